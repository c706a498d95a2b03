"""The shipped ONNX models: contracts (shapes, dtypes, dynamic batch and width), golden parity, and accuracy smoke
tests through the serving pipeline.

No torch needed: onnxruntime CPU, numpy, and the synthetic generator. The real sets in ../shared/data are used when
present (validation only), skipped otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort
import pytest
import yaml

from anpr.recognition import RecognitionPipeline, SessionOptions, load_manifest
from anpr.recognition.letterbox import letterbox_batch
from anpr.recognition.models import MODELS_DIR
from anpr.recognition.paddle_ctc import HIDDEN
from anpr.synth import reader_sample, render_scene
from anpr.training.evaluate import corner_box
from anpr.training.fuse import fuse
from testkit.plate_models import labelled_crops

MODELS = MODELS_DIR
PLATE_CHARACTERS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
READER_CLASSES = PLATE_CHARACTERS + HIDDEN  # the plate characters, then the hidden-character mark


def _session(path: Path) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((MODELS / "manifest.yaml").read_text())
    return data


@pytest.fixture(scope="module")
def reader(manifest: dict[str, Any]) -> ort.InferenceSession:
    return _session(MODELS / manifest["reader"]["path"])


@pytest.fixture(scope="module")
def detector(manifest: dict[str, Any]) -> ort.InferenceSession:
    return _session(MODELS / manifest["detector"]["path"])


@pytest.fixture(scope="module")
def pipeline() -> RecognitionPipeline:
    return RecognitionPipeline.load(MODELS, session_options=SessionOptions(intra_op_threads=1))


def test_manifest_and_files(manifest: dict[str, Any]) -> None:
    assert manifest["detector"]["format"] == "yolov9-end2end"
    assert manifest["refiner"]["format"] == "yolov9-end2end"
    assert manifest["reader"]["format"] == "paddleocr-ctc"
    for part in ("detector", "refiner", "reader"):
        path = MODELS / manifest[part]["path"]
        assert path.is_file()
        assert path.stat().st_size <= 10 * 1024 * 1024
    loaded = load_manifest(MODELS)  # checks the files' SHA-256 against the manifest
    assert loaded.detector is not None
    assert loaded.refiner is not None
    assert loaded.refiner.input_size is not None
    assert loaded.detector.input_size is not None
    assert loaded.refiner.input_size < loaded.detector.input_size
    assert loaded.reader.two_row_below > 0
    # The scorer fitted on these very models (a new model set needs `python -m anpr.training calibrate`).
    assert loaded.scoring is not None
    assert 0 < loaded.scoring.min_confidence < 1
    # The scorer takes the version of the reader it was fitted with (a new detector gets a new reader version too).
    assert loaded.scoring.version == manifest["reader"]["version"]


def test_reader_contract(reader: ort.InferenceSession) -> None:
    inp = reader.get_inputs()[0]
    assert inp.type == "tensor(float)"
    assert inp.shape[1:3] == [3, 48]
    assert not isinstance(inp.shape[0], int)  # dynamic batch
    assert not isinstance(inp.shape[3], int)  # dynamic width
    assert reader.get_modelmeta().custom_metadata_map["character"].split("\n") == list(READER_CLASSES)
    rng = np.random.default_rng(0)
    for width in (96, 128):
        x = rng.uniform(-1, 1, (3, 3, 48, width)).astype(np.float32)
        out = reader.run(None, {inp.name: x})[0]
        assert out.dtype == np.float32
        assert out.shape == (3, width // 8, 1 + len(READER_CLASSES))  # one CTC frame per 8 px
        np.testing.assert_allclose(out.sum(-1), 1.0, atol=1e-4)  # probabilities: softmax inside the graph
        one = reader.run(None, {inp.name: x[1:2]})[0]
        np.testing.assert_allclose(one[0], out[1], atol=1e-5)


def test_reader_golden_parity(reader: ort.InferenceSession) -> None:
    golden = np.load(MODELS / "plate_reader_ctc_golden.npz")
    got = reader.run(None, {reader.get_inputs()[0].name: golden["input"]})[0]
    np.testing.assert_allclose(got, golden["output"], atol=1e-4)


def test_reader_activations_are_fused(manifest: dict[str, Any]) -> None:
    """The shipped reader went through ``anpr.training.fuse``: nothing is left to fold. (The shipped golden file was
    written before the rewrite, so the golden parity test also shows that the rewrite kept the function.)"""
    model = onnx.load(str(MODELS / manifest["reader"]["path"]))
    counts = fuse(model)
    assert counts["conv_affine_folded"] == 0
    assert counts["hard_swish_fused"] == 0
    assert counts["pointwise_affine_folded"] == 0
    assert any(node.op_type == "HardSwish" for node in model.graph.node)


def test_detector_contract(detector: ort.InferenceSession, manifest: dict[str, Any]) -> None:
    size = int(manifest["detector"]["input_size"])
    inp = detector.get_inputs()[0]
    assert inp.type == "tensor(float)"
    assert inp.shape[1:] == [3, size, size]
    assert not isinstance(inp.shape[0], int)
    x = np.random.default_rng(1).random((3, 3, size, size), dtype=np.float32)
    rows = detector.run(None, {inp.name: x})[0]
    assert rows.dtype == np.float32
    assert rows.ndim == 2
    assert rows.shape[1] == 7
    assert set(np.unique(rows[:, 0])) <= {0.0, 1.0, 2.0}
    assert np.all(rows[:, 5] == 0.0)


def _golden(stem: str) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """A detector golden file's input (stored small, enlarged by pixel repetition) and its recorded rows."""
    golden = np.load(MODELS / f"{stem}_golden.npz")
    k = int(golden["repeat"])
    big = np.repeat(np.repeat(golden["input_small"], k, axis=0), k, axis=1)
    return big.transpose(2, 0, 1)[None].astype(np.float32) / 255.0, golden["output"]


def test_detector_golden_parity_and_batch(detector: ort.InferenceSession) -> None:
    x, expected = _golden("plate_detector")
    name = detector.get_inputs()[0].name
    rows = detector.run(None, {name: x})[0]
    np.testing.assert_allclose(rows, expected, atol=1e-3)
    assert len(rows) > 0
    batch = detector.run(None, {name: np.concatenate([np.zeros_like(x), x, x])})[0]
    for b in (1, 2):
        np.testing.assert_allclose(batch[batch[:, 0] == b][:, 1:], rows[:, 1:], atol=1e-3)


def test_refiner_golden_parity(manifest: dict[str, Any]) -> None:
    refiner = _session(MODELS / manifest["refiner"]["path"])
    size = int(manifest["refiner"]["input_size"])
    assert refiner.get_inputs()[0].shape[1:] == [3, size, size]
    x, expected = _golden("plate_refiner")
    rows = refiner.run(None, {refiner.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(rows, expected, atol=1e-3)


def test_letterbox_convention() -> None:
    img = np.zeros((100, 200, 3), np.uint8)
    tensor, boxes = letterbox_batch([img], 64)
    assert tensor.shape == (1, 3, 64, 64)
    assert boxes[0].ratio == pytest.approx(0.32)
    grey = 114 / 255
    np.testing.assert_allclose(tensor[0, :, :16], grey, atol=1e-6)
    np.testing.assert_allclose(tensor[0, :, 48:], grey, atol=1e-6)


def test_reader_reads_synthetic_plates(pipeline: RecognitionPipeline) -> None:
    """Smoke test against a broken export or a broken input path (which read ~0 %), not a quality bar.

    The shipped reader reads nearly all of these clean synthetic crops (MODEL_CARD.md); the bar sits well below.
    """
    rng = np.random.default_rng(2024)
    samples = [reader_sample(rng, None, strength=0.0) for _ in range(40)]
    readings = pipeline.read_plates([np.ascontiguousarray(s.image[:, :, ::-1]) for s in samples])
    ok = sum(r.text == s.label for r, s in zip(readings, samples, strict=True))
    assert ok >= 28, f"{ok}/40"
    two_row = [(r, s) for r, s in zip(readings, samples, strict=True) if s.rows == 2]
    assert all(r.raw_text for r, _ in two_row)


def test_reader_says_when_a_bar_hides_characters(pipeline: RecognitionPipeline) -> None:
    """Smoke test of the hidden-character class: crops with a bar over characters are mostly flagged partial,
    crops without one almost never (the shipped reader flags most of them; the bars sit well below)."""
    rng = np.random.default_rng(2025)
    barred: list[Any] = []
    while len(barred) < 30:
        sample = reader_sample(rng, None, strength=0.0, occlusion=1.0)
        if HIDDEN in sample.label:
            barred.append(sample)
    clean = [reader_sample(rng, None, strength=0.0) for _ in range(30)]
    flagged = [r.hidden_characters > 0 for r in pipeline.read_plates([s.image[:, :, ::-1].copy() for s in barred])]
    false = [r.hidden_characters > 0 for r in pipeline.read_plates([s.image[:, :, ::-1].copy() for s in clean])]
    assert sum(flagged) >= 18, f"{sum(flagged)}/30"
    assert sum(false) <= 2, f"{sum(false)}/30"


def test_reader_on_real_brazilian_crops(pipeline: RecognitionPipeline) -> None:
    """Validation-only smoke test: the shipped pipeline reads about 90 % of these (docs/BENCHMARKS.md)."""
    crops, labels = labelled_crops("openalpr-br", 40)
    if not crops:
        pytest.skip("../shared/data/openalpr-br is not present")
    readings = pipeline.read_plates(crops)
    ok = sum(r.text == label for r, label in zip(readings, labels, strict=True))
    assert ok >= 30, f"{ok}/40"


def test_detector_finds_synthetic_plates(pipeline: RecognitionPipeline) -> None:
    rng = np.random.default_rng(77)
    found = total = 0
    for _ in range(10):
        scene = render_scene(rng, 1280, 720, max_plates=3, min_width_1080p=90, max_width_1080p=400)
        bgr = np.ascontiguousarray(scene.image[:, :, ::-1])
        detections = pipeline.detector.detect([bgr]) if pipeline.detector is not None else [[]]
        for b in scene.boxes:
            plate = corner_box(*b)
            found += any(plate.iou(d.box) >= 0.3 for d in detections[0])
            total += 1
    assert total > 0
    assert found >= 0.9 * total, f"{found}/{total}"


def test_scenes_end_to_end_at_the_default_operating_point(pipeline: RecognitionPipeline) -> None:
    """Smoke test of the whole shipped pipeline (detector, refiner, reader, scorer and its floors) on held-out
    synthetic 1080p scenes: most plates are reported with their text, and little else is (MODEL_CARD.md has the
    measured figures; the bars sit well below them)."""
    rng = np.random.default_rng(4321)
    plates = right = reported = 0
    for _ in range(12):
        scene = render_scene(rng, 1920, 1080, max_plates=2, min_width_1080p=120, max_width_1080p=400)
        ok, jpeg = cv2.imencode(".jpg", np.ascontiguousarray(scene.image[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 90])
        assert ok
        result = pipeline.recognize([jpeg.tobytes()])[0]
        reported += len(result.plates)
        for b, label, hidden in zip(scene.boxes, scene.labels, scene.occluded, strict=True):
            if hidden:
                continue
            plates += 1
            right += any(p.reading.text == label and p.box.iou(corner_box(*b)) >= 0.3 for p in result.plates)
    assert plates > 0
    assert right >= 0.6 * plates, f"{right}/{plates}"
    assert reported <= 1.5 * plates + 3, f"{reported} readings for {plates} plates"


def test_onnxruntime_cpu_provider_loads() -> None:
    assert "CPUExecutionProvider" in ort.get_available_providers()
