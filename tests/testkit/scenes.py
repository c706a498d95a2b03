"""Scenes with known plates for the real recognize service: a white-plate detector and rendered vehicle passes.

- :func:`build_plate_band_detector`: a ``yolov9-end2end`` detector, computed inside the ONNX graph, that reports in
  each horizontal band of its (letterboxed) input the bounding box of the white pixels, i.e. of a white plate; a
  band without white pixels reports nothing (score 0). Plates in different bands (top and bottom half of the
  frame) are therefore separate detections, and a plain grey frame has none.
- :func:`scene_model_dir`: that detector plus the project's shipped reader, which reads clean rendered plates
  reliably: the recognize service then gives real per-frame texts, on a fresh clone too.
- :func:`render_scene`: a grey frame with rendered plates in given boxes (see :mod:`testkit.passes`).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper, numpy_helper

from testkit.plate_models import render_plate, write_shipped_reader_manifest

SIZE = 320
OPSET = 17
FRAME_SIZE = (1280, 720)
GREY = 114
PLATE_SIZE = (256, 64)


def _const(name: str, value: npt.NDArray[np.generic]) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.asarray(value), name=name + "_v"))


def build_plate_band_detector(path: Path, size: int = SIZE, bands: int = 2) -> Path:
    """Write the white-plate band detector (see the module docstring) to ``path``."""
    nodes = [
        _const("white", np.array(0.85, dtype=np.float32)),
        _const("zero_i", np.array(0, dtype=np.int64)),
        _const("one_i", np.array(1, dtype=np.int64)),
        _const("one_f", np.array(1.0, dtype=np.float32)),
        _const("zero_f", np.array(0.0, dtype=np.float32)),
        _const("score", np.array(0.9, dtype=np.float32)),
        _const("ax1", np.array([1], dtype=np.int64)),
        helper.make_node("ReduceMin", ["images"], ["darkest"], axes=[1], keepdims=0),  # [N, S, S]
        helper.make_node("Greater", ["darkest", "white"], ["maskb"]),
        helper.make_node("Cast", ["maskb"], ["mask"], to=TensorProto.FLOAT),
        helper.make_node("Shape", ["images"], ["shape"]),
        helper.make_node("Gather", ["shape", "zero_i"], ["n"], axis=0),
        helper.make_node("Range", ["zero_i", "n", "one_i"], ["idx_i"]),
        helper.make_node("Cast", ["idx_i"], ["idx_f"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["idx_f", "ax1"], ["bidx"]),  # [N, 1]
        helper.make_node("Mul", ["bidx", "zero_f"], ["zeros"]),
    ]
    rows = []
    height = size // bands
    for band in range(bands):
        top, bottom = band * height, size if band == bands - 1 else (band + 1) * height
        b = f"b{band}_"
        nodes += [
            _const(b + "starts", np.array([top], dtype=np.int64)),
            _const(b + "ends", np.array([bottom], dtype=np.int64)),
            _const(b + "top", np.array(float(top), dtype=np.float32)),
            helper.make_node("Slice", ["mask", b + "starts", b + "ends", "ax1"], [b + "mask"]),  # [N, h, S]
            helper.make_node("ReduceMax", [b + "mask"], [b + "cols"], axes=[1], keepdims=0),  # [N, S]
            helper.make_node("ReduceMax", [b + "mask"], [b + "rows"], axes=[2], keepdims=0),  # [N, h]
            helper.make_node("ReduceMax", [b + "cols"], [b + "present"], axes=[1], keepdims=1),  # [N, 1]
            helper.make_node("ArgMax", [b + "cols"], [b + "x1i"], axis=1, keepdims=1),
            helper.make_node("ArgMax", [b + "cols"], [b + "x2i"], axis=1, keepdims=1, select_last_index=1),
            helper.make_node("ArgMax", [b + "rows"], [b + "y1i"], axis=1, keepdims=1),
            helper.make_node("ArgMax", [b + "rows"], [b + "y2i"], axis=1, keepdims=1, select_last_index=1),
            helper.make_node("Cast", [b + "x1i"], [b + "x1"], to=TensorProto.FLOAT),
            helper.make_node("Cast", [b + "x2i"], [b + "x2l"], to=TensorProto.FLOAT),
            helper.make_node("Cast", [b + "y1i"], [b + "y1l"], to=TensorProto.FLOAT),
            helper.make_node("Cast", [b + "y2i"], [b + "y2l"], to=TensorProto.FLOAT),
            helper.make_node("Add", [b + "x2l", "one_f"], [b + "x2"]),
            helper.make_node("Add", [b + "y1l", b + "top"], [b + "y1"]),
            helper.make_node("Add", [b + "y2l", b + "top"], [b + "y2m"]),
            helper.make_node("Add", [b + "y2m", "one_f"], [b + "y2"]),
            helper.make_node("Mul", [b + "present", "score"], [b + "score"]),  # 0 for an empty band: filtered
            helper.make_node(
                "Concat", ["bidx", b + "x1", b + "y1", b + "x2", b + "y2", "zeros", b + "score"], [b + "row"], axis=1
            ),
        ]
        rows.append(b + "row")
    nodes.append(helper.make_node("Concat", rows, ["output"], axis=0))
    graph = helper.make_graph(
        nodes,
        "plate_band_detector",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, size, size])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["rows", 7])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def scene_model_dir(directory: Path) -> Path:
    """A model set in ``directory``: the band detector and the project's shipped reader (manifest ``test-set t1``;
    no scorer, so every reading is returned)."""
    directory.mkdir(parents=True, exist_ok=True)
    detector = build_plate_band_detector(directory / "detector.onnx")
    write_shipped_reader_manifest(directory, detector=detector, input_size=SIZE)
    return directory


Box = tuple[int, int, int, int]  # x, y, width, height in pixels


def render_scene(plates: list[tuple[str, Box]], frame_size: tuple[int, int] = FRAME_SIZE) -> bytes:
    """A grey frame with rendered plates in their boxes, as JPEG (plates in different halves are separate reads)."""
    width, height = frame_size
    image = np.full((height, width, 3), GREY, dtype=np.uint8)
    for text, (x, y, w, h) in plates:
        image[y : y + h, x : x + w] = cv2.resize(render_plate(text), (w, h), interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return bytes(data.tobytes())
