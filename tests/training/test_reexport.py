"""An exported detector re-exported at another input size (needs torch: skipped without)."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import yaml

pytest.importorskip("torch")

from anpr.recognition import RecognitionPipeline  # after the torch check
from anpr.recognition.models import MODELS_DIR
from anpr.training import export


def _run(*argv: str) -> None:
    parser = argparse.ArgumentParser()
    export.add_arguments(parser)
    export.run(parser.parse_args(list(argv)))


def _rows(path: Path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {"input": x})[0])


def _reexport(tmp_path: Path, size: int) -> Path:
    """The shipped models copied to ``tmp_path`` with the detector re-exported at ``size``; their directory."""
    out = tmp_path / "models"
    shutil.copytree(MODELS_DIR, out)
    detector = str(MODELS_DIR / "plate_detector.onnx")
    _run("--work", str(tmp_path / "empty"), "--out", str(out), "--detector-onnx", detector, "--size", str(size))
    return out


def test_reexport_at_the_same_size_reproduces_the_shipped_detector(tmp_path: Path) -> None:
    shipped = yaml.safe_load((MODELS_DIR / "manifest.yaml").read_text())["detector"]
    out = _reexport(tmp_path, int(shipped["input_size"]))
    golden = np.load(MODELS_DIR / "plate_detector_golden.npz")
    small, repeat = golden["input_small"], int(golden["repeat"])
    x = (np.repeat(np.repeat(small, repeat, 0), repeat, 1).transpose(2, 0, 1)[None] / 255.0).astype(np.float32)
    expected = _rows(MODELS_DIR / "plate_detector.onnx", x)
    assert len(expected) > 0
    np.testing.assert_allclose(_rows(out / "plate_detector.onnx", x), expected, atol=1e-3)
    entry = yaml.safe_load((out / "manifest.yaml").read_text())["detector"]
    assert entry["version"] == f"{shipped['version']}-{shipped['input_size']}px"


def test_reexport_at_another_size_loads_in_the_pipeline(tmp_path: Path) -> None:
    out = _reexport(tmp_path, 256)
    pipeline = RecognitionPipeline.load(out)
    assert pipeline.detect_size == 256
    session = ort.InferenceSession(str(out / "plate_detector.onnx"), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[2:] == [256, 256]
