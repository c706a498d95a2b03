"""Model manifests: operator-supplied model sets, validated with clear errors."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from anpr.recognition import RecognitionPipeline
from anpr.recognition.errors import ModelError
from anpr.recognition.manifest import load_manifest


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


# paddleocr-ctc readers -------------------------------------------------------------------------------------------


@pytest.fixture
def ctc_dir(tmp_path: Path) -> Path:
    (tmp_path / "rec.onnx").write_bytes(b"not parsed by the manifest")
    (tmp_path / "keys.txt").write_text("A\nB\n", encoding="utf-8")
    return tmp_path


def test_ctc_reader_entry_and_defaults(ctc_dir: Path) -> None:
    _write(ctc_dir, "reader:\n  format: paddleocr-ctc\n  path: rec.onnx\n")
    reader = load_manifest(ctc_dir).reader
    assert (reader.format, reader.path, reader.plate_config, reader.dictionary) == (
        "paddleocr-ctc",
        ctc_dir / "rec.onnx",
        None,
        None,
    )
    assert (reader.input_height, reader.min_width, reader.max_width) == (None, 96, 128)
    assert (reader.width_scale, reader.two_row_below) == (1.0, 0.0)
    assert reader.files == (ctc_dir / "rec.onnx",)
    _write(
        ctc_dir,
        "reader:\n  format: paddleocr-ctc\n  path: rec.onnx\n  dictionary: keys.txt\n  input_height: 32\n"
        "  min_width: 64\n  max_width: 320\n  width_scale: 0.75\n  two_row_below: 2.2\n  min_confidence: 0.05\n",
    )
    reader = load_manifest(ctc_dir).reader
    assert reader.min_confidence == 0.05
    assert reader.dictionary == ctc_dir / "keys.txt"
    assert reader.files == (ctc_dir / "rec.onnx", ctc_dir / "keys.txt")
    assert (reader.input_height, reader.min_width, reader.max_width) == (32, 64, 320)
    assert (reader.width_scale, reader.two_row_below) == (0.75, 2.2)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("  plate_config: keys.txt\n", r"reader \(paddleocr-ctc\) has unknown key\(s\) plate_config"),
        ("  dictionary: missing.txt\n", "reader.dictionary: file .*missing.txt does not exist"),
        ("  input_height: true\n", "reader.input_height must be an integer between 8 and 512, not True"),
        ("  input_height: 4\n", "reader.input_height must be an integer between 8 and 512, not 4"),
        ("  min_width: wide\n", "reader.min_width must be an integer between 8 and 4096, not 'wide'"),
        ("  max_width: 64.5\n", "reader.max_width must be an integer"),
        ("  min_width: 200\n", r"reader.max_width \(128\) must not be below min_width \(200\)"),
        ("  width_scale: 0\n", r"reader.width_scale must be a number in \(0, 2\], not 0"),
        ("  width_scale: 2.5\n", r"reader.width_scale must be a number in \(0, 2\], not 2.5"),
        ("  two_row_below: -1\n", r"reader.two_row_below must be a number in \[0, 10\], not -1"),
        ("  two_row_below: yes\n", "reader.two_row_below must be a number"),
        ("  min_confidence: 1.5\n", r"reader.min_confidence must be a number in \[0, 1\], not 1.5"),
    ],
)
def test_ctc_reader_errors(ctc_dir: Path, extra: str, message: str) -> None:
    path = _write(ctc_dir, "reader:\n  format: paddleocr-ctc\n  path: rec.onnx\n" + extra)
    with pytest.raises(ModelError, match=message) as caught:
        load_manifest(ctc_dir)
    if "missing" not in extra:  # (a missing file is named itself)
        assert str(path) in str(caught.value)  # the manifest is named


def test_fast_plate_ocr_keys_stay_their_own(model_dir: Path, tmp_path: Path) -> None:
    _write(
        tmp_path,
        f"reader:\n  format: fast-plate-ocr\n  path: {model_dir}/reader.onnx\n"
        f"  plate_config: {model_dir}/reader.yaml\n  two_row_below: 2\n",
    )
    with pytest.raises(ModelError, match=r"reader \(fast-plate-ocr\) has unknown key\(s\) two_row_below"):
        load_manifest(tmp_path)
