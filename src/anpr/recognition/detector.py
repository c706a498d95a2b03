"""Plate detector adapter for the ``yolov9-end2end`` contract (open-image-models and this project's detector).

Contract: one float32 NCHW input ``[N, 3, S, S]`` (square, letterboxed RGB / 255, see :mod:`.letterbox`); the first
output holds rows ``[batch_idx, x1, y1, x2, y2, class_id, score]`` in input pixels, NMS already applied inside
the model. Models exported with a fixed batch of 1 are run one image at a time.

Each stage is a plain function or method (``preprocess`` -> ``run`` -> ``postprocess``) so it can be tested with
numpy fixtures; the session is created once and ``InferenceSession.run`` is thread-safe.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from anpr.recognition.errors import ModelError
from anpr.recognition.letterbox import Letterbox, letterbox_batch
from anpr.recognition.manifest import DetectorSpec
from anpr.recognition.session import SessionOptions, create_session, single_input
from anpr.recognition.types import Box, Detection

ROW_WIDTH = 7


@dataclass(frozen=True, slots=True)
class DetectorInput:
    """A preprocessed batch: the tensor and each image's letterbox placement and size ``(w, h)``."""

    tensor: npt.NDArray[np.float32]
    letterboxes: list[Letterbox]
    sizes: list[tuple[int, int]]


def postprocess(
    rows: npt.NDArray[np.float32],
    letterboxes: list[Letterbox],
    sizes: list[tuple[int, int]],
    *,
    min_score: float,
) -> list[list[Detection]]:
    """Split model rows by batch index, drop low scores, un-letterbox, clip to the image; best first per image."""
    results: list[list[Detection]] = [[] for _ in letterboxes]
    if rows.size == 0:
        return results
    rows = rows.reshape(-1, ROW_WIDTH)
    keep = rows[:, 6] >= min_score
    rows = rows[keep]
    for index in np.unique(rows[:, 0].astype(np.int64)):
        if not 0 <= index < len(letterboxes):
            continue  # a malformed row; never index outside the batch
        mine = rows[rows[:, 0].astype(np.int64) == index]
        boxes = letterboxes[index].unmap(mine[:, 1:5])
        w, h = sizes[index]
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
        for (x1, y1, x2, y2), class_id, score in zip(boxes, mine[:, 5], mine[:, 6], strict=True):
            if x2 - x1 >= 1 and y2 - y1 >= 1:
                box = Box(float(x1), float(y1), float(x2 - x1), float(y2 - y1))
                results[index].append(Detection(box, float(score), int(class_id)))
        results[index].sort(key=lambda d: d.confidence, reverse=True)
    return results


class Yolov9End2EndDetector:
    """Loads a ``yolov9-end2end`` ONNX model once; ``detect`` runs a batch of BGR images."""

    def __init__(self, spec: DetectorSpec, options: SessionOptions | None = None, *, min_score: float = 0.25) -> None:
        self.spec = spec
        self.min_score = min_score
        self.session = create_session(spec.path, options)
        io = single_input(self.session, "detector", spec.path, "tensor(float)")
        self.input_name: str = io.input_name
        self.output_name: str = io.output_name
        shape = io.input_shape
        if len(shape) != 4 or (isinstance(shape[1], int) and shape[1] != 3):
            raise ModelError(f"detector {spec.path}: input must be NCHW [N, 3, S, S], found {shape}")
        height, width = shape[2], shape[3]
        if isinstance(height, int) and isinstance(width, int):
            if height != width:
                raise ModelError(f"detector {spec.path}: input must be square, found {height}x{width}")
            if spec.input_size is not None and spec.input_size != height:
                raise ModelError(
                    f"detector {spec.path}: manifest input_size {spec.input_size} does not match the model's {height}"
                )
            self.input_size: int = height
        elif spec.input_size is not None:
            self.input_size = spec.input_size
        else:
            raise ModelError(f"detector {spec.path}: input size is dynamic; set detector.input_size in the manifest")
        # A fixed batch dimension of 1 (as open-image-models exports) means one run per image.
        self.fixed_batch = shape[0] if isinstance(shape[0], int) else None
        out_shape = io.output_shape
        if len(out_shape) != 2 or (isinstance(out_shape[1], int) and out_shape[1] != ROW_WIDTH):
            raise ModelError(
                f"detector {spec.path}: output must be rows [K, 7] (batch, x1, y1, x2, y2, class, score), "
                f"found {out_shape}"
            )

    @property
    def provider(self) -> str:
        """The execution provider that runs this model."""
        return str(self.session.get_providers()[0])

    def preprocess(self, images: list[npt.NDArray[np.uint8]]) -> DetectorInput:
        """Letterbox BGR images into the model's square input."""
        tensor, letterboxes = letterbox_batch(images, self.input_size)
        return DetectorInput(tensor, letterboxes, [(image.shape[1], image.shape[0]) for image in images])

    def run(self, tensor: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Run the model on a preprocessed batch; rows of every image with the batch index rewritten."""
        if self.fixed_batch is None or self.fixed_batch == len(tensor):
            out = self.session.run([self.output_name], {self.input_name: tensor})[0]
            return np.asarray(out, dtype=np.float32).reshape(-1, ROW_WIDTH)
        if self.fixed_batch != 1:
            raise ModelError(f"detector {self.spec.path}: fixed batch size {self.fixed_batch} is not supported")
        parts = []
        for index in range(len(tensor)):
            out = self.session.run([self.output_name], {self.input_name: tensor[index : index + 1]})[0]
            rows = np.asarray(out, dtype=np.float32).reshape(-1, ROW_WIDTH).copy()
            rows[:, 0] = index
            parts.append(rows)
        return np.concatenate(parts) if parts else np.zeros((0, ROW_WIDTH), dtype=np.float32)

    def detect(self, images: list[npt.NDArray[np.uint8]], *, min_score: float | None = None) -> list[list[Detection]]:
        """Plates in each image (boxes in that image's pixels), best first."""
        if not images:
            return []
        prepared = self.preprocess(images)
        rows = self.run(prepared.tensor)
        threshold = self.min_score if min_score is None else min_score
        return postprocess(rows, prepared.letterboxes, prepared.sizes, min_score=threshold)
