"""Fixtures of the pipeline tests: test-built models, the peer reader when present, manifests in tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest

from testkit.plate_models import PEER_CONFIG, PEER_MODEL, build_constant_reader, build_content_detector, write_manifest

DETECTOR_SIZE = 96


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Test-built models: the content-box detector (dynamic and fixed batch) and a constant reader."""
    directory = tmp_path_factory.mktemp("models")
    build_content_detector(directory / "detector.onnx", DETECTOR_SIZE)
    build_content_detector(directory / "detector_b1.onnx", DETECTOR_SIZE, fixed_batch=True)
    build_constant_reader(directory / "reader.onnx", "CA12345G")
    return directory


@pytest.fixture
def fake_manifest(model_dir: Path, tmp_path: Path) -> Path:
    """Test detector + constant reader: runs without the peer model."""
    return write_manifest(
        tmp_path,
        detector=model_dir / "detector.onnx",
        reader=model_dir / "reader.onnx",
        config=model_dir / "reader.yaml",
    )


@pytest.fixture
def peer_manifest(model_dir: Path, tmp_path: Path) -> Path:
    """Test detector + the real fast-plate-ocr peer reader; skips when the peer is absent."""
    if not PEER_MODEL.is_file():
        pytest.skip("peer reader not present in ../shared/peers")
    return write_manifest(tmp_path, detector=model_dir / "detector.onnx", reader=PEER_MODEL, config=PEER_CONFIG)
