"""The ``fast-plate-ocr`` reader adapter: output decoding fixtures, the real peer model, real plate crops."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from anpr.recognition.alternatives import top_readings
from anpr.recognition.errors import ModelError
from anpr.recognition.fast_plate_ocr import (
    FastPlateOcrReader,
    PlateConfig,
    decode_output,
    load_plate_config,
    resize_crop,
)
from anpr.recognition.manifest import ReaderSpec
from testkit.plate_models import (
    ALPHABET,
    PEER_CONFIG,
    PEER_MODEL,
    build_content_detector,
    labelled_crops,
    render_plate,
)

CONFIG = PlateConfig(max_plate_slots=4, alphabet=ALPHABET, pad_char="_", img_height=8, img_width=16)
needs_peer = pytest.mark.skipif(not PEER_MODEL.is_file(), reason="peer reader not present in ../shared/peers")


def _one_hot(text: str, p: float = 0.9) -> np.ndarray:
    probs = np.full((CONFIG.max_plate_slots, len(ALPHABET)), (1 - p) / (len(ALPHABET) - 1), dtype=np.float32)
    for i, ch in enumerate(text.ljust(CONFIG.max_plate_slots, "_")):
        probs[i, ALPHABET.index(ch)] = p
    return probs


def test_decode_output_strips_pads() -> None:
    readings = decode_output(np.stack([_one_hot("AB1"), _one_hot(""), _one_hot("ZZZZ", 0.5)]), CONFIG)
    assert [r.text for r in readings] == ["AB1", "", "ZZZZ"]
    assert readings[0].character_confidences == pytest.approx((0.9, 0.9, 0.9))
    assert readings[0].confidence == pytest.approx(0.9**4)  # the pad slot counts: the plate ends there
    assert readings[0].probabilities.shape == (3, len(ALPHABET))
    assert readings[2].confidence == pytest.approx(0.5**4)


def test_decode_output_accepts_flat_rows() -> None:
    flat = _one_hot("AB1").reshape(1, -1)
    assert decode_output(flat, CONFIG)[0].text == "AB1"


def test_alternatives_from_slot_probabilities() -> None:
    probs = _one_hot("AB1_", 0.98)
    probs[1, ALPHABET.index("8")] = 0.3  # B or 8?
    probs[3, ALPHABET.index("7")] = 0.1  # maybe a fourth character
    candidates = top_readings(probs, ALPHABET, "_", count=3)
    assert [c.text for c in candidates] == ["AB1", "A81", "AB17"]
    assert candidates[0].confidence > candidates[1].confidence > candidates[2].confidence
    assert candidates[2].slots == (0, 1, 2, 3)


def test_resize_crop_follows_the_config() -> None:
    crop = np.zeros((10, 40, 3), dtype=np.uint8)
    crop[..., 2] = 200  # red in BGR
    out = resize_crop(crop, CONFIG)
    assert out.shape == (8, 16, 3)
    assert out[0, 0, 0] == 200  # RGB order for the model
    gray = resize_crop(crop, PlateConfig(4, ALPHABET, "_", 8, 16, keep_aspect_ratio=True, image_color_mode="grayscale"))
    assert gray.shape == (8, 16, 1)
    assert gray[0, 0, 0] == 114  # letterbox padding above the 4-pixel-high resized crop


def test_plate_config_errors(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("alphabet: ABC\n")
    with pytest.raises(ModelError, match="lacks"):
        load_plate_config(path)
    path.write_text('max_plate_slots: 9\nalphabet: "AB_"\npad_char: "#"\nimg_height: 64\nimg_width: 128\n')
    with pytest.raises(ModelError, match="pad_char"):
        load_plate_config(path)
    path.write_text('max_plate_slots: x\nalphabet: "AB_"\npad_char: "_"\nimg_height: 64\nimg_width: 128\n')
    with pytest.raises(ModelError, match="wrong type"):
        load_plate_config(path)


def test_reader_contract_errors(tmp_path: Path) -> None:
    detector = build_content_detector(tmp_path / "detector.onnx")
    config = tmp_path / "config.yaml"
    config.write_text(f'max_plate_slots: 9\nalphabet: "{ALPHABET}"\npad_char: "_"\nimg_height: 64\nimg_width: 128\n')
    with pytest.raises(ModelError, match="uint8"):
        FastPlateOcrReader(ReaderSpec("fast-plate-ocr", detector, config, "t", "1"))
    if PEER_MODEL.is_file():
        config.write_text(
            f'max_plate_slots: 9\nalphabet: "{ALPHABET}"\npad_char: "_"\nimg_height: 70\nimg_width: 140\n'
        )
        with pytest.raises(ModelError, match="input shape"):
            FastPlateOcrReader(ReaderSpec("fast-plate-ocr", PEER_MODEL, config, "t", "1"))
        config.write_text(
            f'max_plate_slots: 8\nalphabet: "{ALPHABET}"\npad_char: "_"\nimg_height: 64\nimg_width: 128\n'
        )
        with pytest.raises(ModelError, match="output shape"):
            FastPlateOcrReader(ReaderSpec("fast-plate-ocr", PEER_MODEL, config, "t", "1"))


@pytest.fixture(scope="module")
def peer() -> FastPlateOcrReader:
    if not PEER_MODEL.is_file():
        pytest.skip("peer reader not present in ../shared/peers")
    return FastPlateOcrReader(ReaderSpec("fast-plate-ocr", PEER_MODEL, PEER_CONFIG, "peer", "1"))


def test_peer_reads_rendered_plates(peer: FastPlateOcrReader) -> None:
    texts = ["ABC1234", "CA12345", "BC45DFGP", "XY2468", "HJK9876"]
    readings = peer.read([render_plate(text) for text in texts])  # one batch
    assert [r.text for r in readings] == texts
    assert all(min(r.character_confidences) > 0.5 for r in readings)


def test_peer_on_real_brazilian_crops(peer: FastPlateOcrReader) -> None:
    crops, labels = labelled_crops("openalpr-br", 50)
    if not crops:
        pytest.skip("real plate photos not present in ../shared/data")
    readings = peer.read(crops)
    exact = sum(r.text == label for r, label in zip(readings, labels, strict=True))
    assert exact >= 40, f"{exact}/50 exact"  # the peer reads about 88 % of these crops
