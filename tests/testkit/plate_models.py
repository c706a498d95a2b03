"""Tiny ONNX models and images built by tests, following the pipeline's model contracts.

- :func:`build_content_detector`: a ``yolov9-end2end`` detector whose one real "detection" is the bounding box of
  every pixel that is not the letterbox grey (114) and not the frame background, computed inside the graph. A
  test frame with a grey background and one bright plate therefore yields that plate's box in letterbox
  coordinates, which the pipeline must map back to the original image; a second, low-score row per image checks
  score filtering, and the batch-index column checks batch handling.
- :func:`build_constant_reader`: a ``fast-plate-ocr`` reader that reads the same text from every crop.
- :func:`build_ctc_reader`: a ``paddleocr-ctc`` reader whose frames follow a fixed table of class probabilities,
  switched on by the brightness of the line's centre rows: a white line reads the table's first ``width / 8``
  frames, a black (or padded) stretch reads blanks, so the text depends on the crop's width and layout.
- :func:`render_plate` / :func:`plate_frame`: black-on-white plates drawn with OpenCV, pasted on a grey frame.
- :func:`labelled_crops`: the labelled plate boxes of a real set in ``../shared/data`` (validation only).
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import onnx
import yaml
from onnx import TensorProto, helper, numpy_helper

from anpr.recognition.models import MODELS_DIR

PEER_DIR = Path(__file__).resolve().parents[3] / "shared" / "peers" / "fast-plate-ocr-cct-xs-v1-global"
PEER_MODEL = PEER_DIR / "cct_xs_v1_global.onnx"
PEER_CONFIG = PEER_DIR / "cct_xs_v1_global_plate_config.yaml"
DATA_DIR = Path(__file__).resolve().parents[3] / "shared" / "data"
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_"
BACKGROUND = 114
OPSET = 17


def _const(name: str, value: npt.NDArray[np.generic]) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.asarray(value), name=name + "_v"))


def build_content_detector(path: Path, size: int = 96, *, fixed_batch: bool = False) -> Path:
    """Write the content-box detector (see the module docstring) to ``path``."""
    nodes = [
        _const("bg", np.array(BACKGROUND / 255.0, dtype=np.float32)),
        _const("thr", np.array(0.03, dtype=np.float32)),
        _const("zero_i", np.array(0, dtype=np.int64)),
        _const("one_i", np.array(1, dtype=np.int64)),
        _const("one_f", np.array(1.0, dtype=np.float32)),
        _const("zero_f", np.array(0.0, dtype=np.float32)),
        _const("hi", np.array(0.9, dtype=np.float32)),
        _const("lo", np.array(0.1, dtype=np.float32)),
        _const("ax1", np.array([1], dtype=np.int64)),
        helper.make_node("Sub", ["images", "bg"], ["diff"]),
        helper.make_node("Abs", ["diff"], ["adiff"]),
        helper.make_node("ReduceMax", ["adiff"], ["chan"], axes=[1], keepdims=0),
        helper.make_node("Greater", ["chan", "thr"], ["maskb"]),
        helper.make_node("Cast", ["maskb"], ["mask"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMax", ["mask"], ["cols"], axes=[1], keepdims=0),
        helper.make_node("ReduceMax", ["mask"], ["rows"], axes=[2], keepdims=0),
        helper.make_node("ArgMax", ["cols"], ["x1i"], axis=1, keepdims=1),
        helper.make_node("ArgMax", ["cols"], ["x2i"], axis=1, keepdims=1, select_last_index=1),
        helper.make_node("ArgMax", ["rows"], ["y1i"], axis=1, keepdims=1),
        helper.make_node("ArgMax", ["rows"], ["y2i"], axis=1, keepdims=1, select_last_index=1),
        helper.make_node("Cast", ["x1i"], ["x1"], to=TensorProto.FLOAT),
        helper.make_node("Cast", ["y1i"], ["y1"], to=TensorProto.FLOAT),
        helper.make_node("Cast", ["x2i"], ["x2l"], to=TensorProto.FLOAT),
        helper.make_node("Cast", ["y2i"], ["y2l"], to=TensorProto.FLOAT),
        helper.make_node("Add", ["x2l", "one_f"], ["x2"]),
        helper.make_node("Add", ["y2l", "one_f"], ["y2"]),
        helper.make_node("Shape", ["images"], ["shape"]),
        helper.make_node("Gather", ["shape", "zero_i"], ["n"], axis=0),
        helper.make_node("Range", ["zero_i", "n", "one_i"], ["idx_i"]),
        helper.make_node("Cast", ["idx_i"], ["idx_f"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["idx_f", "ax1"], ["bidx"]),
        helper.make_node("Mul", ["bidx", "zero_f"], ["zeros"]),
        helper.make_node("Add", ["zeros", "hi"], ["score_hi"]),
        helper.make_node("Add", ["zeros", "lo"], ["score_lo"]),
        helper.make_node("Concat", ["bidx", "x1", "y1", "x2", "y2", "zeros", "score_hi"], ["row_hi"], axis=1),
        # The low-score row covers the whole input; it must be filtered out by the default threshold.
        helper.make_node("Add", ["zeros", "one_f"], ["ones"]),
        _const("full", np.array(float(size), dtype=np.float32)),
        helper.make_node("Mul", ["ones", "full"], ["fulls"]),
        helper.make_node(
            "Concat", ["bidx", "zeros", "zeros", "fulls", "fulls", "zeros", "score_lo"], ["row_lo"], axis=1
        ),
        helper.make_node("Concat", ["row_hi", "row_lo"], ["output"], axis=0),
    ]
    batch: int | str = 1 if fixed_batch else "batch"
    graph = helper.make_graph(
        nodes,
        "content_detector",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch, 3, size, size])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["rows", 7])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def build_constant_reader(path: Path, text: str, *, slots: int = 9, height: int = 64, width: int = 128) -> Path:
    """A ``fast-plate-ocr`` model reading ``text`` (probability 0.9 per slot) from any crop; writes its config too."""
    probs = np.full((slots, len(ALPHABET)), 0.1 / (len(ALPHABET) - 1), dtype=np.float32)
    for i in range(slots):
        probs[i, ALPHABET.index(text[i] if i < len(text) else "_")] = 0.9
    nodes = [
        _const("probs", probs[None]),
        _const("zero_f", np.array(0.0, dtype=np.float32)),
        helper.make_node("Cast", ["input"], ["inf"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMean", ["inf"], ["mean"], axes=[1, 2, 3], keepdims=1),  # [N, 1, 1, 1]
        helper.make_node("Squeeze", ["mean", "sq_axes"], ["mean2"]),  # [N, 1]
        helper.make_node("Unsqueeze", ["mean2", "sq_axes1"], ["mean3"]),  # [N, 1, 1]
        helper.make_node("Mul", ["mean3", "zero_f"], ["zeros"]),
        helper.make_node("Add", ["zeros", "probs"], ["output"]),
        _const("sq_axes", np.array([2, 3], dtype=np.int64)),
        _const("sq_axes1", np.array([2], dtype=np.int64)),
    ]
    graph = helper.make_graph(
        nodes,
        "constant_reader",
        [helper.make_tensor_value_info("input", TensorProto.UINT8, ["batch", height, width, 3])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", slots, len(ALPHABET)])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    # Constants are declared after use above for readability; sort them first for a valid topological order.
    model.graph.node.sort(key=lambda node: node.op_type != "Constant")
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    path.with_suffix(".yaml").write_text(
        f'max_plate_slots: {slots}\nalphabet: "{ALPHABET}"\npad_char: "_"\nimg_height: {height}\n'
        f"img_width: {width}\nkeep_aspect_ratio: false\ninterpolation: linear\nimage_color_mode: rgb\n",
        encoding="utf-8",
    )
    return path


def ctc_frames(
    classes: list[int | dict[int, float]], count: int, *, frames: int = 64, per_char: int = 2, p: float = 0.9
) -> npt.NDArray[np.float32]:
    """A ``[frames, count]`` table for :func:`build_ctc_reader`: each entry of ``classes`` for ``per_char`` frames
    (a class index at probability ``p``, or an explicit {class: probability} frame), then one blank frame; blank
    frames after the last. Probability not given to a named class is spread evenly over the others.
    """
    table = np.zeros((frames, count), dtype=np.float32)
    rows: list[dict[int, float]] = []
    for entry in classes:
        rows += [entry if isinstance(entry, dict) else {entry: p}] * per_char + [{0: p}]
    rows += [{0: p}] * (frames - len(rows))
    for t, row in enumerate(rows[:frames]):
        rest = (1.0 - sum(row.values())) / (count - len(row))
        table[t] = rest
        for index, value in row.items():
            table[t, index] = value
    return table


def build_ctc_reader(
    path: Path,
    table: npt.NDArray[np.float32],
    *,
    characters: str | None = None,
    height: int = 48,
    dynamic_height: bool = False,
    fixed_width: int | None = None,
) -> Path:
    """A ``paddleocr-ctc`` model (see the module docstring) with optional ``character`` metadata.

    Frame ``t`` of a line outputs ``softmax(g * log(table[t]))`` with ``g`` the mean of the frame's centre-row
    pixels, floored at 0: ``table[t]`` itself on white, uniform (so the blank, the first class) on black or padding.
    """
    centre = height // 2
    nodes = [
        _const("log_table", np.log(np.maximum(table, 1e-9)).astype(np.float32)),
        _const("rows_lo", np.array([centre - 2], dtype=np.int64)),
        _const("rows_hi", np.array([centre + 2], dtype=np.int64)),
        _const("axis2", np.array([2], dtype=np.int64)),
        _const("axis0", np.array([0], dtype=np.int64)),
        _const("frame_shape", np.array([0, -1, 8], dtype=np.int64)),
        _const("three", np.array([3], dtype=np.int64)),
        _const("eight", np.array([8], dtype=np.int64)),
        helper.make_node("Slice", ["x", "rows_lo", "rows_hi", "axis2"], ["centre"]),
        helper.make_node("ReduceMean", ["centre"], ["columns"], axes=[1, 2], keepdims=0),  # [N, W]
        helper.make_node("Reshape", ["columns", "frame_shape"], ["framed"]),  # [N, T, 8]
        helper.make_node("ReduceMean", ["framed"], ["level"], axes=[2], keepdims=1),  # [N, T, 1]
        helper.make_node("Relu", ["level"], ["gate"]),
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Gather", ["shape", "three"], ["width"], axis=0),
        helper.make_node("Div", ["width", "eight"], ["steps"]),
        helper.make_node("Slice", ["log_table", "axis0", "steps", "axis0"], ["logp"]),  # [T, C]
        helper.make_node("Mul", ["gate", "logp"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=-1),
    ]
    h: int | str = "height" if dynamic_height else height
    w: int | str = fixed_width if fixed_width is not None else "width"
    graph = helper.make_graph(
        nodes,
        "ctc_reader",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, h, w])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", "steps", table.shape[1]])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    if characters is not None:
        helper.set_model_props(model, {"character": characters})
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def write_manifest(
    directory: Path, *, detector: Path | None, reader: Path, config: Path, input_size: int | None = None
) -> Path:
    """A manifest in ``directory`` pointing at the given files (absolute paths)."""
    lines = [
        "name: test-set",
        "version: t1",
        "reader:",
        "  format: fast-plate-ocr",
        f"  path: {reader}",
        f"  plate_config: {config}",
    ]
    if detector is not None:
        lines += ["detector:", "  format: yolov9-end2end", f"  path: {detector}"]
        if input_size is not None:
            lines.append(f"  input_size: {input_size}")
    path = directory / "manifest.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_shipped_reader_manifest(directory: Path, *, detector: Path, input_size: int | None = None) -> Path:
    """A manifest in ``directory``: ``detector`` with the project's shipped reader (``test-set t1``; no scorer, so
    every reading is returned whatever its confidence)."""
    reader = yaml.safe_load((MODELS_DIR / "manifest.yaml").read_text())["reader"]
    reader["path"] = str(MODELS_DIR / reader["path"])
    entry: dict[str, object] = {"format": "yolov9-end2end", "path": str(detector)}
    if input_size is not None:
        entry["input_size"] = input_size
    manifest = {"name": "test-set", "version": "t1", "reader": reader, "detector": entry}
    path = directory / "manifest.yaml"
    path.write_text(yaml.safe_dump(manifest, sort_keys=False), encoding="utf-8")
    return path


def render_plate(text: str, width: int = 256, height: int = 64) -> npt.NDArray[np.uint8]:
    """Black text on a white plate with a border (BGR); the text is centred and kept clear of the border (a glyph
    touching the border is dropped by real readers, and Hershey glyph widths differ between OpenCV releases)."""
    image = np.full((height, width, 3), 255, dtype=np.uint8)
    cv2.rectangle(image, (2, 2), (width - 3, height - 3), (0, 0, 0), 2)
    scale = height / 64
    thickness = max(2, int(4 * scale))
    font_scale = 1.5 * scale
    text_width = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness)[0][0]
    room = width - 2 * int(14 * scale)
    if text_width > room:
        font_scale *= room / text_width
        text_width = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness)[0][0]
    cv2.putText(
        image,
        text,
        ((width - text_width) // 2, int(48 * scale)),
        cv2.FONT_HERSHEY_SIMPLEX,
        font_scale,
        (0, 0, 0),
        thickness,
        cv2.LINE_AA,
    )
    return image


def plate_frame(text: str, frame_size: tuple[int, int], box: tuple[int, int, int, int]) -> npt.NDArray[np.uint8]:
    """A grey (114) frame of ``frame_size`` (w, h) with a rendered plate resized into ``box`` (x, y, w, h)."""
    width, height = frame_size
    frame = np.full((height, width, 3), BACKGROUND, dtype=np.uint8)
    x, y, w, h = box
    frame[y : y + h, x : x + w] = cv2.resize(render_plate(text), (w, h), interpolation=cv2.INTER_AREA)
    return frame


def encode(image: npt.NDArray[np.uint8], ext: str = ".png", quality: int = 95) -> bytes:
    """Encode with OpenCV (PNG by default: lossless, so the grey background stays exactly 114)."""
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if ext == ".jpg" else []
    ok, buffer = cv2.imencode(ext, image, params)
    assert ok
    return buffer.tobytes()


def labelled_crops(dataset: str, limit: int) -> tuple[list[npt.NDArray[np.uint8]], list[str]]:
    """The first ``limit`` labelled plates of a real set (BGR crops of the labelled box, and their texts).

    Empty lists when the set is not present (callers skip).
    """
    labels = DATA_DIR / dataset / "labels.jsonl"
    crops: list[npt.NDArray[np.uint8]] = []
    texts: list[str] = []
    if not labels.is_file():
        return crops, texts
    for line in labels.read_text().splitlines()[:limit]:
        record = json.loads(line)
        image = cv2.imread(str(DATA_DIR / dataset / record["image"]))
        assert image is not None
        x, y, w, h = record["plates"][0]["box"]
        crops.append(np.ascontiguousarray(image[y : y + h, x : x + w], dtype=np.uint8))
        texts.append(str(record["plates"][0]["text"]))
    return crops, texts
