"""Weight interpolation: the fine-tuned reader moved part of the way back to the pretrained recogniser it came from.

Fine-tuning on synthetic plates teaches the reader plate layouts and the project's fonts, and makes it forget some of
what PaddleOCR's recogniser knew about real glyphs: the fine-tuned reader read the open-top 4 of US plates as L and W
as N with high confidence where the pretrained recogniser did not. Interpolating the weights of the two models
(``alpha * tuned + (1 - alpha) * pretrained``, "WiSE-FT", Wortsman et al., CVPR 2022) keeps most of the fine-tuning's
gain on the training distribution and much of the pretrained model's robustness on others, at no cost at run time:
the two graphs are the same network (the plate head of :mod:`anpr.training.paddle_base`, rewritten by
:mod:`anpr.training.fuse`), so the interpolated model is one more set of weights for the same graph.

``alpha`` is chosen on held-out synthetic crops only: the smallest value on the grid whose exact accuracy stays within
``--tolerance`` points of the fine-tuned reader's. The real sets are never used to choose it.

Needs onnx and onnxruntime, not torch. The golden file's outputs come from ONNX's reference evaluator (numpy), an
implementation independent of the onnxruntime that serves the model, so the test that compares the two checks the file.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import yaml
from onnx import numpy_helper
from onnx.reference import ReferenceEvaluator

from anpr.recognition.ctc_input import normalise
from anpr.training.contracts import WORK_DIR
from anpr.training.evaluate import load, score_reader, synthetic_crops
from anpr.training.fuse import fuse
from anpr.training.paddle_base import BASE_PACKAGE, INPUT_HEIGHT, fetch_base, plate_head, with_softmax

READER_FILE = "plate_reader_ctc.onnx"
GOLDEN_FILE = "plate_reader_ctc_golden.npz"
GRID = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5)
GOLDEN_WIDTH = 160  # the widest served line


def pretrained_reader(work: Path) -> onnx.ModelProto:
    """The pretrained recogniser with the plate head, the served contract and the fused graph: the same network as
    a reader exported by :func:`anpr.training.ctc_plate_reader.export`, with PaddleOCR's weights."""
    graph = with_softmax(plate_head(onnx.load_model_from_string(fetch_base(work))))
    fuse(graph)
    return graph


def interpolate(tuned: onnx.ModelProto, pretrained: onnx.ModelProto, alpha: float) -> onnx.ModelProto:
    """``tuned`` with every floating-point weight replaced by ``alpha * tuned + (1 - alpha) * pretrained``.

    Raises ValueError when the two are not the same network (other nodes, weight names or shapes).
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], not {alpha}")
    if [n.op_type for n in tuned.graph.node] != [n.op_type for n in pretrained.graph.node]:
        raise ValueError("the two readers are not the same graph (their nodes differ)")
    weights = {t.name: numpy_helper.to_array(t) for t in pretrained.graph.initializer}
    out = onnx.ModelProto()
    out.CopyFrom(tuned)
    for tensor in out.graph.initializer:
        mine = numpy_helper.to_array(tensor)
        theirs = weights.get(tensor.name)
        if theirs is None or theirs.shape != mine.shape:
            raise ValueError(f"weight {tensor.name} has no counterpart of shape {mine.shape} in the pretrained reader")
        if mine.dtype.kind == "f":
            mixed = (alpha * mine.astype(np.float64) + (1.0 - alpha) * theirs.astype(np.float64)).astype(mine.dtype)
            tensor.CopyFrom(numpy_helper.from_array(mixed, tensor.name))
    onnx.checker.check_model(out)
    return out


def _with_reader(models: Path, reader: onnx.ModelProto, into: Path) -> Path:
    """A copy of the model set in ``models`` with ``reader`` in place of its reader, written to ``into``."""
    into.mkdir(parents=True, exist_ok=True)
    for item in models.iterdir():
        if item.is_file() and item.name != READER_FILE:
            (into / item.name).write_bytes(item.read_bytes())
    path = into / READER_FILE
    onnx.save(reader, str(path))
    manifest = yaml.safe_load((into / "manifest.yaml").read_text())
    manifest["reader"]["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    (into / "manifest.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return into


def choose_alpha(
    models: Path, tuned: onnx.ModelProto, pretrained: onnx.ModelProto, work: Path, crops: int, tolerance: float
) -> tuple[float, list[dict[str, Any]]]:
    """The smallest ``alpha`` of :data:`GRID` whose exact accuracy on ``crops`` held-out synthetic crops is within
    ``tolerance`` points of the fine-tuned reader's; every grid point's figures."""
    held_out = synthetic_crops(crops)
    rows: list[dict[str, Any]] = []
    for alpha in GRID:
        candidate = _with_reader(models, interpolate(tuned, pretrained, alpha), work / f"alpha-{alpha:.1f}")
        figures = score_reader(load(candidate), held_out)
        rows.append({"alpha": alpha, **{k: figures[k] for k in ("exact", "folded", "one_edit")}})
        print(json.dumps(rows[-1]), flush=True)
    floor = rows[0]["exact"] - tolerance / 100.0
    chosen = min(row["alpha"] for row in rows if row["exact"] >= floor)
    return chosen, rows


def write_golden(path: Path, models: Path) -> None:
    """Three normalised synthetic lines and the reader's output on them, computed by ONNX's reference evaluator."""
    crops = synthetic_crops(3)
    x = np.stack([normalise(crop, GOLDEN_WIDTH, INPUT_HEIGHT) for crop, _ in crops]).astype(np.float32)
    model = onnx.load(str(models / READER_FILE))
    outputs: Any = ReferenceEvaluator(model).run(None, {model.graph.input[0].name: x})
    expected = outputs[0]
    labels = np.array([label for _, label in crops])
    np.savez_compressed(path, input=x, output=np.asarray(expected, np.float32), labels=labels)


def run(args: argparse.Namespace) -> None:
    """Interpolate the reader of ``--models`` in place (a fine-tuned reader fresh from ``export``)."""
    models = Path(args.models)
    work = Path(args.work)
    manifest = yaml.safe_load((models / "manifest.yaml").read_text())
    reader_path = models / READER_FILE
    tuned = onnx.load(str(reader_path))
    if any(p.key == "interpolation" for p in tuned.metadata_props):
        raise SystemExit(f"{reader_path} is already interpolated; export the fine-tuned reader first")
    pretrained = pretrained_reader(work)
    if args.alpha is None:
        alpha, rows = choose_alpha(models, tuned, pretrained, work / "interpolation", args.crops, args.tolerance)
        (work / "interpolation.json").write_text(json.dumps({"chosen": alpha, "grid": rows}, indent=1))
    else:
        alpha = float(args.alpha)
    mixed = interpolate(tuned, pretrained, alpha)
    mixed.metadata_props.add(
        key="interpolation",
        value=f"{alpha:.2f} x fine-tuned + {1 - alpha:.2f} x pretrained ({BASE_PACKAGE}, PP-OCRv4 mobile recogniser)",
    )
    onnx.save(mixed, str(reader_path))
    entry = manifest["reader"]
    entry["sha256"] = hashlib.sha256(reader_path.read_bytes()).hexdigest()
    entry["version"] = args.version or datetime.date.today().isoformat()
    (models / "manifest.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    write_golden(models / GOLDEN_FILE, models)
    print(f"reader interpolated at alpha {alpha:.2f}: {reader_path}")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Command-line options of ``python -m anpr.training interpolate``."""
    p.add_argument("--models", required=True, help="model set whose reader is the fine-tuned one (from export)")
    p.add_argument("--work", default=str(WORK_DIR), help="where the pinned base wheel is kept")
    p.add_argument("--version", default="", help="the interpolated reader's version (default: today's date)")
    p.add_argument("--alpha", type=float, default=None, help="use this alpha instead of choosing one")
    p.add_argument("--crops", type=int, default=2000, help="held-out synthetic crops to choose alpha on")
    p.add_argument(
        "--tolerance",
        type=float,
        default=1.0,
        help="points of synthetic exact accuracy the interpolated reader may lose against the fine-tuned one",
    )
