"""Plate reader adapter for the ``fast-plate-ocr`` contract.

Contract: ONNX model plus a plate-config YAML (``max_plate_slots``, ``alphabet``, ``pad_char``, ``img_height``,
``img_width``, ``keep_aspect_ratio``, ``interpolation``, ``image_color_mode``, optional ``padding_color``). Input is
uint8 NHWC ``[N, H, W, C]`` (scaling to 0..1 happens inside the graph); the first output is ``[N, slots, alphabet]``
probabilities (a flat ``[N, slots * alphabet]`` is reshaped). The text is the argmax per slot with the trailing pad
removed; the max probability is the character confidence. Resizing follows fast-plate-ocr's ``resize_image``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import yaml

from anpr.recognition.errors import ModelError
from anpr.recognition.manifest import ReaderSpec
from anpr.recognition.session import SessionOptions, create_session, single_input
from anpr.recognition.types import RawReading

_PLATE_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
DEFAULT_MAX_BATCH = 64  # crops per model call unless the caller says otherwise
_INTERPOLATION = {
    "nearest": cv2.INTER_NEAREST,
    "linear": cv2.INTER_LINEAR,
    "cubic": cv2.INTER_CUBIC,
    "area": cv2.INTER_AREA,
    "lanczos4": cv2.INTER_LANCZOS4,
}


@dataclass(frozen=True, slots=True)
class PlateConfig:
    """The fast-plate-ocr plate config of a reader model."""

    max_plate_slots: int
    alphabet: str
    pad_char: str
    img_height: int
    img_width: int
    keep_aspect_ratio: bool = False
    interpolation: str = "linear"
    image_color_mode: str = "rgb"
    padding_color: tuple[int, int, int] = (114, 114, 114)

    @property
    def channels(self) -> int:
        """Input channels: 3 for RGB, 1 for grayscale."""
        return 3 if self.image_color_mode == "rgb" else 1


def load_plate_config(path: Path) -> PlateConfig:
    """Read and validate a plate-config YAML; unknown keys of newer fast-plate-ocr versions are ignored."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ModelError(f"plate config {path} could not be read: {exc}") from exc
    if not isinstance(raw, dict):
        raise ModelError(f"plate config {path} must be a mapping")
    missing = [k for k in ("max_plate_slots", "alphabet", "pad_char", "img_height", "img_width") if k not in raw]
    if missing:
        raise ModelError(f"plate config {path} lacks {', '.join(missing)}")
    try:
        padding: Any = raw.get("padding_color", (114, 114, 114))
        if isinstance(padding, int):
            padding = (padding,) * 3
        config = PlateConfig(
            max_plate_slots=int(raw["max_plate_slots"]),
            alphabet=str(raw["alphabet"]),
            pad_char=str(raw["pad_char"]),
            img_height=int(raw["img_height"]),
            img_width=int(raw["img_width"]),
            keep_aspect_ratio=bool(raw.get("keep_aspect_ratio", False)),
            interpolation=str(raw.get("interpolation", "linear")),
            image_color_mode=str(raw.get("image_color_mode", "rgb")),
            padding_color=(int(padding[0]), int(padding[1]), int(padding[2])),
        )
    except (TypeError, ValueError, IndexError) as exc:
        raise ModelError(f"plate config {path} has a value of the wrong type: {exc}") from exc
    if config.pad_char not in config.alphabet or len(config.pad_char) != 1:
        raise ModelError(f"plate config {path}: pad_char must be one character of the alphabet")
    if config.interpolation not in _INTERPOLATION:
        raise ModelError(f"plate config {path}: interpolation must be one of {', '.join(_INTERPOLATION)}")
    if config.image_color_mode not in ("rgb", "grayscale"):
        raise ModelError(f"plate config {path}: image_color_mode must be rgb or grayscale")
    return config


def resize_crop(crop: npt.NDArray[np.uint8], config: PlateConfig) -> npt.NDArray[np.uint8]:
    """A BGR crop converted and resized to the reader's input (``[H, W, C]``), as fast-plate-ocr does."""
    if config.image_color_mode == "rgb":
        image = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)
        pad: int | tuple[int, int, int] = config.padding_color
    else:
        image = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
        pad = config.padding_color[0]
    interpolation = _INTERPOLATION[config.interpolation]
    height, width = config.img_height, config.img_width
    if not config.keep_aspect_ratio:
        image = cv2.resize(image, (width, height), interpolation=interpolation)
    else:
        h, w = image.shape[:2]
        r = min(height / h, width / w)
        new_w, new_h = round(w * r), round(h * r)
        if (w, h) != (new_w, new_h):
            image = cv2.resize(image, (new_w, new_h), interpolation=interpolation)
        dw, dh = (width - new_w) / 2, (height - new_h) / 2
        image = cv2.copyMakeBorder(
            image,
            round(dh - 0.1),
            round(dh + 0.1),
            round(dw - 0.1),
            round(dw + 0.1),
            borderType=cv2.BORDER_CONSTANT,
            value=pad,
        )
    if image.ndim == 2:
        image = image[:, :, None]
    return np.asarray(image, dtype=np.uint8)


def decode_output(probabilities: npt.NDArray[np.float32], config: PlateConfig) -> list[RawReading]:
    """Argmax per slot, trailing pad removed; one :class:`RawReading` per row of ``[N, slots, alphabet]``."""
    probs = probabilities.reshape(-1, config.max_plate_slots, len(config.alphabet)).astype(np.float32, copy=False)
    pad_index = config.alphabet.index(config.pad_char)
    normal = [ch.upper() in _PLATE_CHARS for ch in config.alphabet]
    best = probs.argmax(axis=-1)
    best_p = probs.max(axis=-1)
    readings = []
    for slots, maxima, dist in zip(best, best_p, probs, strict=True):
        # Pads (trailing or not) and characters outside A-Z/0-9 (an operator alphabet may have separators) are
        # dropped with their slots, so the text is normalised and still lines up with its probabilities.
        keep = [i for i, index in enumerate(slots) if index != pad_index and normal[index]]
        text = "".join(config.alphabet[slots[i]].upper() for i in keep)
        confidences = tuple(float(maxima[i]) for i in keep)
        readings.append(
            RawReading(
                text=text,
                character_confidences=confidences,
                confidence=float(math.prod(float(p) for p in maxima)),
                probabilities=dist[keep],
                slot_probabilities=dist,
            )
        )
    return readings


class FastPlateOcrReader:
    """Loads a ``fast-plate-ocr`` model and its plate config once; ``read`` runs a batch of BGR crops."""

    precision = "uint8 in, float32 out"

    def __init__(
        self, spec: ReaderSpec, options: SessionOptions | None = None, *, max_batch: int | None = None
    ) -> None:
        if spec.plate_config is None:
            raise ModelError(f"reader {spec.path}: the fast-plate-ocr format needs a plate_config")
        self.spec = spec
        self.config = load_plate_config(spec.plate_config)
        self.session = create_session(spec.path, options)
        self.max_batch = max_batch or DEFAULT_MAX_BATCH
        io = single_input(self.session, "reader", spec.path, "tensor(uint8)")
        self.input_name: str = io.input_name
        self.output_name: str = io.output_name
        cfg = self.config
        expected = [cfg.img_height, cfg.img_width, cfg.channels]
        shape = io.input_shape
        if len(shape) != 4 or any(isinstance(s, int) and s != e for s, e in zip(shape[1:], expected, strict=True)):
            raise ModelError(
                f"reader {spec.path}: input shape {shape} does not match the plate config's "
                f"[N, {cfg.img_height}, {cfg.img_width}, {cfg.channels}]"
            )
        self.fixed_batch = shape[0] if isinstance(shape[0], int) else None
        out_shape = [s for s in io.output_shape[1:] if isinstance(s, int)]
        if out_shape and math.prod(out_shape) != cfg.max_plate_slots * len(cfg.alphabet):
            raise ModelError(
                f"reader {spec.path}: output shape {io.output_shape} does not match the plate config's "
                f"{cfg.max_plate_slots} slots x {len(cfg.alphabet)} characters"
            )

    @property
    def provider(self) -> str:
        """The execution provider that runs this model."""
        return str(self.session.get_providers()[0])

    @property
    def alphabet(self) -> str:
        """The columns of a reading's ``probabilities`` and ``slot_probabilities``: the plate config's alphabet."""
        return self.config.alphabet

    @property
    def slot_alphabet(self) -> str:
        """The columns of ``slot_probabilities`` (the same alphabet: every slot is a plain model output row)."""
        return self.config.alphabet

    @property
    def pad_char(self) -> str:
        """The character of an empty slot."""
        return self.config.pad_char

    @property
    def input_width(self) -> int:
        """The model's input width."""
        return self.config.img_width

    @property
    def input_height(self) -> int:
        """The model's input height."""
        return self.config.img_height

    def preprocess(self, crops: list[npt.NDArray[np.uint8]]) -> npt.NDArray[np.uint8]:
        """Stack resized crops into the uint8 NHWC input."""
        cfg = self.config
        batch = np.empty((len(crops), cfg.img_height, cfg.img_width, cfg.channels), dtype=np.uint8)
        for i, crop in enumerate(crops):
            batch[i] = resize_crop(crop, cfg)
        return batch

    def run(self, batch: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        """Per-slot probabilities ``[N, slots, alphabet]``, in chunks the model accepts."""
        step = self.fixed_batch or self.max_batch
        parts = [
            np.asarray(self.session.run([self.output_name], {self.input_name: batch[i : i + step]})[0])
            for i in range(0, len(batch), step)
        ]
        cfg = self.config
        return np.concatenate(parts).astype(np.float32, copy=False).reshape(-1, cfg.max_plate_slots, len(cfg.alphabet))

    def read(self, crops: list[npt.NDArray[np.uint8]]) -> list[RawReading]:
        """Raw readings of BGR plate crops, in order."""
        if not crops:
            return []
        return decode_output(self.run(self.preprocess(crops)), self.config)
