"""Write and check the lock files in ``requirements/``: every package version pinned, with hashes.

One lock per install the project makes: ``dev`` (``tools/setup.sh``), ``demo`` (``tools/demo``), ``core`` (the
ingest and hotlist images), ``recognize`` (the CPU recognize image) and ``recognize-gpu`` (the GPU recognize image;
TensorRT comes from NVIDIA's index, outside any lock). ``dev`` is resolved first and constrains the others, so a
package has one version in every lock that holds it. Each is resolved by ``uv pip compile --universal``, so one
file serves x86_64 and aarch64 (platform differences are environment markers), for Python 3.11 (the images').

* ``python tools/lock.py`` re-resolves every lock, keeping the versions already pinned where pyproject.toml still
  allows them (``--upgrade`` moves everything to the newest allowed versions). Needs the network (PyPI).
* ``python tools/lock.py --check`` works offline: each lock records a fingerprint of the requirements it was
  resolved from; the check fails when pyproject.toml's requirements for that install changed since, or when a
  direct requirement has no pin. Used by the test suite.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO_ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = REPO_ROOT / "pyproject.toml"
LOCK_DIR = REPO_ROOT / "requirements"
PYTHON_VERSION = "3.11"

#: Lock name -> the extras it installs (none: the core dependencies alone).
LOCKS: Mapping[str, tuple[str, ...]] = {
    "dev": ("dev",),
    "demo": ("demo",),
    "core": (),
    "recognize": ("recognize",),
    "recognize-gpu": ("recognize-gpu",),
}

FINGERPRINT_PREFIX = "# requirements-fingerprint: "
STALE_MESSAGE = "Lock files are stale: run `python tools/lock.py` (needs PyPI) and commit requirements/"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def load_project(path: Path = PYPROJECT) -> dict[str, object]:
    """The ``[project]`` table of pyproject.toml."""
    project: dict[str, object] = tomllib.loads(path.read_text())["project"]
    return project


def requirements_of(project: Mapping[str, object], extras: Iterable[str]) -> list[Requirement]:
    """The direct requirements of the core install plus ``extras``, self-references (``name[extra]``) expanded."""
    name = canonicalize_name(str(project["name"]))
    optional = project.get("optional-dependencies", {})
    assert isinstance(optional, dict)
    core = project.get("dependencies", [])
    assert isinstance(core, list)
    found: list[Requirement] = [Requirement(line) for line in core]
    pending, seen = list(extras), set()
    while pending:
        extra = pending.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for line in optional[extra]:
            requirement = Requirement(line)
            if canonicalize_name(requirement.name) == name:
                pending.extend(requirement.extras)
            else:
                found.append(requirement)
    return found


def fingerprint(requirements: Iterable[Requirement]) -> str:
    """A digest of the requirements, independent of their order and spelling in pyproject.toml."""
    lines = sorted({str(requirement) for requirement in requirements})
    return hashlib.sha256("\n".join([f"python {PYTHON_VERSION}", *lines]).encode()).hexdigest()


def pins(text: str) -> dict[str, set[str]]:
    """Package name (canonical) -> the versions a lock file pins (several where markers split it)."""
    pinned: dict[str, set[str]] = {}
    for line in text.splitlines():
        match = _PIN.match(line)
        if match:
            pinned.setdefault(canonicalize_name(match[1]), set()).add(match[2])
    return pinned


def check(project: Mapping[str, object], lock_dir: Path = LOCK_DIR) -> list[str]:
    """What is wrong with the lock files (empty when each matches pyproject.toml)."""
    problems = []
    for lock, extras in LOCKS.items():
        path = lock_dir / f"{lock}.txt"
        if not path.is_file():
            problems.append(f"{path.name}: missing")
            continue
        text = path.read_text()
        requirements = requirements_of(project, extras)
        if f"{FINGERPRINT_PREFIX}{fingerprint(requirements)}" not in text.splitlines():
            problems.append(f"{path.name}: resolved from other requirements than pyproject.toml's")
        pinned = pins(text)
        for requirement in requirements:
            versions = pinned.get(canonicalize_name(requirement.name), set())
            if not versions:
                problems.append(f"{path.name}: {requirement.name} is not pinned")
            for version in sorted(versions):
                if not requirement.specifier.contains(version, prereleases=True):
                    problems.append(f"{path.name}: {requirement.name}=={version} violates {requirement.specifier}")
    return problems


def write(project: Mapping[str, object], upgrade: bool) -> None:
    """Resolve every lock with uv and record its fingerprint."""
    LOCK_DIR.mkdir(exist_ok=True)
    for lock, extras in LOCKS.items():
        path = LOCK_DIR / f"{lock}.txt"
        command = [
            sys.executable,
            "-m",
            "uv",
            "pip",
            "compile",
            str(PYPROJECT.relative_to(REPO_ROOT)),
            "--universal",
            "--python-version",
            PYTHON_VERSION,
            "--generate-hashes",
            "--quiet",
            "--custom-compile-command",
            "python tools/lock.py",
            "--output-file",
            str(path.relative_to(REPO_ROOT)),
            *(f"--extra={extra}" for extra in extras),
            *([] if lock == "dev" else ["--constraint", "requirements/dev.txt"]),
            *(["--upgrade"] if upgrade else []),
        ]
        subprocess.run(command, check=True, cwd=REPO_ROOT)
        lines = [line for line in path.read_text().splitlines() if not line.startswith(FINGERPRINT_PREFIX)]
        lines.insert(2, f"{FINGERPRINT_PREFIX}{fingerprint(requirements_of(project, extras))}")
        path.write_text("\n".join(lines) + "\n")
        print(f"wrote {path.relative_to(REPO_ROOT)}")


def main(argv: list[str] | None = None) -> int:
    """Command line: write the locks, or ``--check`` them."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="offline: fail if a lock no longer matches")
    parser.add_argument("--upgrade", action="store_true", help="move every pin to the newest allowed version")
    args = parser.parse_args(argv)
    project = load_project()
    if args.check:
        problems = check(project)
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print(STALE_MESSAGE, file=sys.stderr)
            return 1
        return 0
    write(project, args.upgrade)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
