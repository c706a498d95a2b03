"""The command line of a service or agent: ``--help`` generated from its settings class, nothing else accepted.

Services take every setting from the environment (one validated settings object, see :mod:`anpr.runtime.settings`),
so their command line has one job: explain them. ``--help`` prints the command's purpose and, for every field of
the settings class, its name, environment variable, type, default and description; it needs no setting to be set.
Any other argument is a usage error (exit status 2), so a mistyped flag never starts a service.
"""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Sequence
from typing import Any

from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings

_WIDTH = 100


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) if not getattr(annotation, "__args__", None) else None
    text = text or str(annotation)
    for noise in ("typing.", "pathlib.", "pydantic.types.", "<class '", "'>"):
        text = text.replace(noise, "")
    return text


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        return "computed at start (see below)"
    if field.default is PydanticUndefined:
        return "required"
    value = field.default
    if value is None:
        return "unset"
    if isinstance(value, tuple):
        value = list(value)
    if isinstance(value, list):
        return "[" + ", ".join(f'"{item}"' if isinstance(item, str) else str(item) for item in value) + "]"
    return str(value)


def settings_help(settings_class: type[BaseSettings]) -> str:
    """One paragraph per setting: ``name (ENV_VAR)``, its type and default, then its description."""
    prefix = str(settings_class.model_config.get("env_prefix", "")).upper()
    lines = ["settings (environment variables; lists and tables as JSON):"]
    for name, field in settings_class.model_fields.items():
        lines.append(f"  {name} ({prefix}{name.upper()})")
        lines.append(f"      type: {_type_name(field.annotation)}; default: {_default(field)}")
        description = field.description or "(no description)"
        lines.extend(textwrap.wrap(description, _WIDTH, initial_indent="      ", subsequent_indent="      "))
    return "\n".join(lines)


def build_parser(prog: str, purpose: str, settings_class: type[BaseSettings]) -> argparse.ArgumentParser:
    """An argument parser that accepts only ``--help`` and whose help lists every setting."""
    return argparse.ArgumentParser(
        prog=prog,
        description=purpose,
        epilog=settings_help(settings_class),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def parse_command_line(prog: str, purpose: str, settings_class: type[BaseSettings], argv: Sequence[str] | None) -> None:
    """Answer ``--help`` (exit 0) or refuse any argument (exit 2); return when there are none."""
    build_parser(prog, purpose, settings_class).parse_args(argv)
