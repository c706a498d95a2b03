"""Model manifests: operator-supplied model sets, validated with clear errors."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from anpr.recognize.pipeline import RecognitionPipeline
from anpr.recognize.pipeline.errors import ModelError
from anpr.recognize.pipeline.manifest import load_manifest


def _write(directory: Path, text: str) -> Path:
    path = directory / "manifest.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_relative_paths_and_defaults(model_dir: Path) -> None:
    _write(
        model_dir,
        "detector:\n  format: yolov9-end2end\n  path: detector.onnx\n"
        "reader:\n  format: fast-plate-ocr\n  path: reader.onnx\n  plate_config: reader.yaml\n",
    )
    manifest = load_manifest(model_dir)  # the directory, or the file itself
    assert manifest == load_manifest(model_dir / "manifest.yaml")
    assert manifest.detector is not None
    assert manifest.detector.path == model_dir / "detector.onnx"
    assert manifest.reader.plate_config == model_dir / "reader.yaml"
    assert manifest.name == model_dir.name
    assert len(manifest.version) == 12  # a content hash when the operator gives no version
    assert manifest.reader.name == "reader"


def test_reader_only_set(model_dir: Path, tmp_path: Path) -> None:
    _write(
        tmp_path,
        f"reader:\n  format: fast-plate-ocr\n  path: {model_dir}/reader.onnx\n"
        f"  plate_config: {model_dir}/reader.yaml\n",
    )
    manifest = load_manifest(tmp_path)
    assert manifest.detector is None
    pipeline = RecognitionPipeline(manifest)
    with pytest.raises(ModelError, match="no detector"):
        pipeline.detect([])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- just\n- a list\n", "must be a mapping"),
        ("name: [unclosed\n", "not valid YAML"),
        ("name: x\n", "no reader"),
        (
            "reader:\n  format: tesseract\n  path: r.onnx\n  plate_config: r.yaml\n",
            "reader.format 'tesseract' is unknown",
        ),
        (
            "reader:\n  format: fast-plate-ocr\n  path: missing.onnx\n  plate_config: reader.yaml\n",
            "missing.onnx does not exist",
        ),
        ("reader:\n  format: fast-plate-ocr\n  path: reader.onnx\n", "reader.plate_config is required"),
        (
            "reader:\n  format: fast-plate-ocr\n  path: reader.onnx\n  plate_config: reader.yaml\n"
            "detector:\n  format: detr\n  path: detector.onnx\n",
            "detector.format 'detr' is unknown",
        ),
        (
            "reader:\n  format: fast-plate-ocr\n  path: reader.onnx\n  plate_config: reader.yaml\n"
            "detector:\n  format: yolov9-end2end\n  path: detector.onnx\n  input_size: huge\n",
            "input_size",
        ),
        ("readr:\n  format: fast-plate-ocr\n", "unknown key"),
        (
            "reader:\n  format: fast-plate-ocr\n  path: reader.onnx\n  plate_config: reader.yaml\n  sha256: abc\n",
            "reader.sha256: .* the manifest expects abc",
        ),
    ],
)
def test_manifest_errors(model_dir: Path, tmp_path: Path, text: str, message: str) -> None:
    for name in ("reader.onnx", "reader.yaml", "detector.onnx"):
        (tmp_path / name).write_bytes((model_dir / name).read_bytes())
    _write(tmp_path, text)
    with pytest.raises(ModelError, match=message):
        load_manifest(tmp_path)


def test_sha256_checked(model_dir: Path, tmp_path: Path) -> None:
    digest = hashlib.sha256((model_dir / "reader.onnx").read_bytes()).hexdigest()
    _write(
        tmp_path,
        f"reader:\n  format: fast-plate-ocr\n  path: {model_dir}/reader.onnx\n"
        f"  plate_config: {model_dir}/reader.yaml\n  sha256: {digest.upper()}\n",
    )
    assert load_manifest(tmp_path).reader.path == model_dir / "reader.onnx"


def test_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        load_manifest(tmp_path)


def test_wrong_model_for_the_stage_is_refused_at_load(model_dir: Path, tmp_path: Path) -> None:
    # The detector file given as the reader: the adapter checks the input dtype and says so.
    _write(
        tmp_path,
        f"reader:\n  format: fast-plate-ocr\n  path: {model_dir}/detector.onnx\n"
        f"  plate_config: {model_dir}/reader.yaml\n",
    )
    with pytest.raises(ModelError, match="uint8"):
        RecognitionPipeline.load(tmp_path)
