"""The ``yolov9-end2end`` detector adapter: letterbox geometry, row post-processing, a test-built model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from anpr.recognition.detector import Yolov9End2EndDetector, postprocess
from anpr.recognition.errors import ModelError
from anpr.recognition.letterbox import PAD_VALUE, Letterbox, letterbox_batch
from anpr.recognition.manifest import DetectorSpec
from testkit.plate_models import BACKGROUND, build_constant_reader, plate_frame

SIZE = 96


@pytest.mark.parametrize(
    ("shape", "ratio", "pad", "placed"),
    [
        # (h, w) -> ratio, (pad_x, pad_y), (left, top, new_w, new_h); open-image-models' rounding rules.
        ((48, 96), 1.0, (0.0, 24.0), (0, 24, 96, 48)),
        ((360, 640), 0.15, (0.0, 21.0), (0, 21, 96, 54)),
        ((100, 41), 0.96, (28.5, 0.0), (28, 0, 39, 96)),  # dw = 28.5: left 28, right 29
        ((95, 190), 96 / 190, (0.0, 24.0), (0, 24, 96, 48)),
        ((20, 30), 3.2, (0.0, 16.0), (0, 16, 96, 64)),  # small images are scaled up
    ],
)
def test_letterbox_placement(
    shape: tuple[int, int], ratio: float, pad: tuple[float, float], placed: tuple[int, int, int, int]
) -> None:
    image = np.full((*shape, 3), 255, dtype=np.uint8)
    batch, (box,) = letterbox_batch([image], SIZE)
    assert batch.shape == (1, 3, SIZE, SIZE)
    assert batch.dtype == np.float32
    assert box.ratio == pytest.approx(ratio)
    assert (box.pad_x, box.pad_y) == pytest.approx(pad, abs=0.5)
    left, top, width, height = placed
    white = np.argwhere(batch[0, 0] == 1.0)
    assert tuple(white.min(axis=0)) == (top, left)
    assert tuple(white.max(axis=0) + 1) == (top + height, left + width)
    assert batch[0, 0, 0, 0] == pytest.approx(PAD_VALUE / 255) or top == left == 0


@pytest.mark.parametrize("shape", [(1, 4000), (4000, 1), (1, 1)])
def test_letterbox_of_a_sliver_keeps_at_least_one_pixel(shape: tuple[int, int]) -> None:
    # Issue 19: 4000x1 rounded to a 0-pixel side, and cv2.resize's assertion failed the whole detector batch.
    images = [np.full((*shape, 3), 255, dtype=np.uint8), np.full((48, 96, 3), 255, dtype=np.uint8)]
    batch, boxes = letterbox_batch(images, SIZE)
    assert batch.shape == (2, 3, SIZE, SIZE)
    assert (batch[0, 0] == 1.0).sum() >= 1
    assert boxes[1].pad_y == pytest.approx(24.0)


def test_letterbox_channel_order() -> None:
    image = np.zeros((SIZE, SIZE, 3), dtype=np.uint8)
    image[..., 0] = 255  # blue in OpenCV's BGR
    batch, _ = letterbox_batch([image], SIZE)
    assert batch[0, 2].min() == 1.0  # blue is the third channel of RGB
    assert batch[0, 0].max() == 0.0


def test_postprocess_rows() -> None:
    rows = np.array(
        [
            [0, 10, 34, 50, 44, 0, 0.9],  # image 0, inside the letterboxed area
            [1, 0, 0, 96, 96, 0, 0.8],  # image 1, the whole input: clipped to the image
            [0, 20, 30, 40, 40, 0, 0.1],  # below the threshold
            [5, 1, 1, 9, 9, 0, 0.99],  # batch index outside the batch: ignored
            [1, 10, 10, 10, 20, 0, 0.7],  # zero width: dropped
        ],
        dtype=np.float32,
    )
    boxes = [Letterbox(0.15, 0.0, 21.0), Letterbox(0.5, 24.0, 0.0)]
    result = postprocess(rows, boxes, [(640, 360), (96, 192)], min_score=0.25)
    assert len(result) == 2
    (first,) = result[0]
    assert (first.box.x, first.box.y, first.box.x2, first.box.y2) == pytest.approx(
        (66.67, 86.67, 333.33, 153.33), abs=0.01
    )
    assert first.confidence == pytest.approx(0.9)
    (second,) = result[1]
    assert (second.box.x, second.box.y, second.box.width, second.box.height) == pytest.approx((0, 0, 96, 192))


def test_postprocess_empty() -> None:
    assert postprocess(np.zeros((0, 7), dtype=np.float32), [Letterbox(1, 0, 0)], [(9, 9)], min_score=0.5) == [[]]


@pytest.mark.parametrize("model", ["detector.onnx", "detector_b1.onnx"])
def test_detector_model_finds_plates_in_a_batch(model_dir: Path, model: str) -> None:
    detector = Yolov9End2EndDetector(DetectorSpec("yolov9-end2end", model_dir / model, "t", "1"))
    assert detector.input_size == SIZE
    frames = [
        plate_frame("CA123456", (640, 360), (200, 150, 160, 40)),
        plate_frame("BC45DFGP", (300, 600), (40, 420, 200, 50)),  # portrait: padded left/right
        np.full((200, 200, 3), BACKGROUND, dtype=np.uint8),  # nothing there but the low-score row
    ]
    found = detector.detect(frames)
    assert [len(f) for f in found] == [1, 1, 1]
    for detections, (x, y, w, h), scale in zip(
        found[:2], [(200, 150, 160, 40), (40, 420, 200, 50)], [640 / 96, 600 / 96], strict=True
    ):
        box = detections[0].box
        # Within about one input pixel (the model sees the frame at 1/scale) after un-letterboxing.
        assert (box.x, box.y, box.width, box.height) == pytest.approx((x, y, w, h), abs=1.5 * scale)
        assert detections[0].confidence == pytest.approx(0.9)
    # An empty frame: the "detection" spans the whole input, i.e. the whole image after clipping.
    assert found[2][0].box.as_xywh() == [0, 0, 200, 200]
    # A low threshold lets the whole-input rows through as well.
    assert [len(f) for f in detector.detect(frames, min_score=0.05)] == [2, 2, 2]


def test_detector_contract_errors(model_dir: Path, tmp_path: Path) -> None:
    reader = build_constant_reader(tmp_path / "reader.onnx", "X")
    with pytest.raises(ModelError, match="float32"):
        Yolov9End2EndDetector(DetectorSpec("yolov9-end2end", reader, "t", "1"))
    with pytest.raises(ModelError, match="does not match"):
        Yolov9End2EndDetector(DetectorSpec("yolov9-end2end", model_dir / "detector.onnx", "t", "1", input_size=640))
    with pytest.raises(ModelError, match="does not exist"):
        Yolov9End2EndDetector(DetectorSpec("yolov9-end2end", tmp_path / "missing.onnx", "t", "1"))
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(ModelError, match="could not be loaded"):
        Yolov9End2EndDetector(DetectorSpec("yolov9-end2end", tmp_path / "junk.onnx", "t", "1"))
