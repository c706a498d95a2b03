"""Export the trained models to the shipped ONNX contracts, check onnxruntime parity, write golden files.

Reader: the fine-tuned PaddleOCR CTC recogniser (``paddleocr-ctc`` contract), see :mod:`anpr.training.ctc_plate_reader`.
Detector: open-image-models YOLOv9 "end2end" contract: the torch graph outputs decoded boxes and scores, and graph
surgery appends NonMaxSuppression and the gathers that build rows [batch, x1, y1, x2, y2, class, score].
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
import yaml
from onnx import TensorProto, helper

from anpr.synth.scene import render_scene
from anpr.training.common import MODELS_DIR, WORK_DIR, load_checkpoint
from anpr.training.contracts import SERVING_DETECTOR_SIZE
from anpr.training.ctc_plate_reader import export as export_ctc
from anpr.training.detector import PlateDetector, decode, letterbox, load_exported

OPSET = 17
IOU_THRESHOLD = 0.45
SCORE_THRESHOLD = 0.15
MAX_DETECTIONS = 50
DETECTOR_STEM = "plate_detector"
REFINER_STEM = "plate_refiner"
# The refiner looks at a region 1 box width and 1.5 box heights beyond each side of a box, at 256 px: a 70-px plate
# of a 720p frame is then about 80 px of input instead of 28 (see anpr.recognition.refine for the measurements).
REFINER_SIZE = 256
REFINER_CONTEXT = (1.0, 1.5)
GOLDEN_REPEAT = 4  # the golden detector input is stored at S/4 x S/4 and enlarged by pixel repetition


class DetectorExport(torch.nn.Module):
    """Float NCHW in, decoded boxes [N, A, 4] and scores [N, 1, A] out (NMS is appended afterwards)."""

    def __init__(self, model: PlateDetector) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Boxes and scores of every stride-8 cell."""
        return decode(self.model(x))


def _session(path: Path) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _export(module: torch.nn.Module, example: torch.Tensor, path: Path, outputs: list[str]) -> None:
    torch.onnx.export(
        module,
        (example,),
        str(path),
        input_names=["input"],
        output_names=outputs,
        opset_version=OPSET,
        dynamic_axes={"input": {0: "batch"}, **{o: {0: "batch"} for o in outputs}},
        dynamo=False,
    )


def append_nms(path: Path) -> None:
    """Graph surgery: boxes/scores outputs -> NonMaxSuppression -> rows [K, 7] named ``output``."""
    model = onnx.load(str(path))
    g = model.graph
    consts = [
        helper.make_tensor("nms_max", TensorProto.INT64, [1], [MAX_DETECTIONS]),
        helper.make_tensor("nms_iou", TensorProto.FLOAT, [1], [IOU_THRESHOLD]),
        helper.make_tensor("nms_score", TensorProto.FLOAT, [1], [SCORE_THRESHOLD]),
        helper.make_tensor("idx0", TensorProto.INT64, [1], [0]),
        helper.make_tensor("idx1", TensorProto.INT64, [1], [1]),
        helper.make_tensor("idx2", TensorProto.INT64, [1], [2]),
    ]
    g.initializer.extend(consts)
    nodes = [
        helper.make_node(
            "NonMaxSuppression", ["boxes", "scores", "nms_max", "nms_iou", "nms_score"], ["sel"], center_point_box=0
        ),
        helper.make_node("Gather", ["sel", "idx0"], ["sel_b"], axis=1),  # [K, 1]
        helper.make_node("Gather", ["sel", "idx1"], ["sel_c"], axis=1),
        helper.make_node("Gather", ["sel", "idx2"], ["sel_i"], axis=1),
        helper.make_node("Concat", ["sel_b", "sel_i"], ["bi"], axis=1),
        helper.make_node("GatherND", ["boxes", "bi"], ["det_boxes"]),  # [K, 4]
        helper.make_node("GatherND", ["scores", "sel"], ["det_scores_flat"]),  # [K]
        helper.make_node("Unsqueeze", ["det_scores_flat", "idx1"], ["det_scores"]),
        helper.make_node("Cast", ["sel_b"], ["det_b"], to=TensorProto.FLOAT),
        helper.make_node("Cast", ["sel_c"], ["det_c"], to=TensorProto.FLOAT),
        helper.make_node("Concat", ["det_b", "det_boxes", "det_c", "det_scores"], ["output"], axis=1),
    ]
    g.node.extend(nodes)
    del g.output[:]
    g.output.append(helper.make_tensor_value_info("output", TensorProto.FLOAT, ["detections", 7]))
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def export_detector(ckpt: Path, out_dir: Path, size: int, seed: int, *, stem: str = DETECTOR_STEM) -> dict[str, object]:
    """Export the detector with NMS inside, check parity on a seeded scene and write the golden file."""
    state = load_checkpoint(ckpt)
    model = PlateDetector()
    model.load_state_dict(state["model"])
    golden = _export_detector_model(model, out_dir, size, seed, stem)
    return {"golden_detections": golden, "steps": state["step"], "seconds": state.get("seconds")}


def reexport_detector(
    onnx_path: Path, out_dir: Path, size: int, seed: int, *, stem: str = DETECTOR_STEM
) -> dict[str, object]:
    """An exported detector again, at another input size: its convolutions do not depend on the size."""
    model = PlateDetector()
    load_exported(model, onnx_path)
    return {"golden_detections": _export_detector_model(model, out_dir, size, seed, stem), "from": str(onnx_path)}


def _export_detector_model(model: PlateDetector, out_dir: Path, size: int, seed: int, stem: str) -> int:
    """``model`` as ``{stem}.onnx`` at ``size``, parity-checked; the golden file's number of rows."""
    wrapped = DetectorExport(model).eval()
    path = out_dir / f"{stem}.onnx"
    _export(wrapped, torch.zeros(1, 3, size, size), path, ["boxes", "scores"])
    append_nms(path)
    session = _session(path)
    rng = np.random.default_rng(seed)
    # The golden input stays small: an S/4 x S/4 scene enlarged by repeating pixels.
    small_size = size // GOLDEN_REPEAT
    for _ in range(20):
        scene = render_scene(rng, small_size, small_size, max_plates=2, min_width_1080p=500, max_width_1080p=900)
        small, _, _ = letterbox(scene.image, small_size)
        big = np.repeat(np.repeat(small, GOLDEN_REPEAT, axis=0), GOLDEN_REPEAT, axis=1)
        x = (big.transpose(2, 0, 1)[None].astype(np.float32) / 255.0).copy()
        rows = session.run(None, {"input": x})[0]
        if len(rows):
            break
    with torch.no_grad():
        boxes, scores = wrapped(torch.from_numpy(x))
        keep = scores[0, 0] >= SCORE_THRESHOLD
        ref = boxes[0][keep].numpy()
    for row in rows:
        d = np.abs(ref - row[1:5]).max(axis=1).min() if len(ref) else np.inf
        if d > 1e-2:
            raise RuntimeError(f"detector parity failed: box {row[1:5]} not among torch boxes (diff {d})")
    np.savez_compressed(out_dir / f"{stem}_golden.npz", input_small=small, repeat=GOLDEN_REPEAT, output=rows)
    return len(rows)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _detector_entry(stem: str, version: str, size: int, out_dir: Path) -> dict[str, object]:
    return {
        "format": "yolov9-end2end",
        "path": f"{stem}.onnx",
        "name": "anpr-plate-detector-s8",
        "version": version,
        "input_size": size,
        "sha256": _sha256(out_dir / f"{stem}.onnx"),
    }


def run(args: argparse.Namespace) -> None:
    """Export the reader and the detector and write the manifest.

    Without a model's checkpoint in ``--work``, that model already in ``--out`` is kept as it is (with its
    manifest entry), so the reader or the detector can be retrained on its own.
    """
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    work = Path(args.work)
    if args.detector_only:
        # An intermediate detector (the start of a fine-tuning stage): the file and its golden, no manifest.
        print(f"detector: {export_detector(work / 'detector.pt', out_dir, args.size, args.seed)}")
        return
    version = args.version or datetime.date.today().isoformat()
    info_r: object
    info_d: object
    old = out_dir / "manifest.yaml"
    previous = yaml.safe_load(old.read_text()) if old.is_file() else {}
    reader: dict[str, object]
    reader_checkpoint = work / "ctc_reader.pt"
    if not reader_checkpoint.is_file() and previous.get("reader"):
        reader, info_r = previous["reader"], f"kept (no {reader_checkpoint.name} in --work)"
    else:
        reader = export_ctc(work, out_dir, version=version)
        info_r = "paddleocr-ctc"
    refiner: dict[str, object] | None = None
    if args.detector_onnx or (work / "detector.pt").is_file():
        detector_version = version
        if args.detector_onnx:
            source = Path(args.detector_onnx)
            info_d = reexport_detector(source, out_dir, args.size, args.seed)
            detector_version = f"{previous.get('detector', {}).get('version', version)}-{args.size}px"
        else:
            source = work / "detector.pt"
            info_d = export_detector(source, out_dir, args.size, args.seed)
        detector = _detector_entry(DETECTOR_STEM, detector_version, args.size, out_dir)
        if args.refiner_size:
            # The same weights at a small input: the second look at each box (anpr.recognition.refine).
            export = reexport_detector if args.detector_onnx else export_detector
            export(source, out_dir, args.refiner_size, args.seed, stem=REFINER_STEM)
            refiner = _detector_entry(
                REFINER_STEM, f"{detector_version}-{args.refiner_size}px", args.refiner_size, out_dir
            )
            refiner["context"] = list(REFINER_CONTEXT)
    elif previous.get("detector"):
        detector, info_d = previous["detector"], "kept (no detector checkpoint in --work)"
        refiner = previous.get("refiner")
    else:
        raise SystemExit(f"no detector checkpoint in {work} and no detector in {out_dir}")
    # A scorer belongs to the models it was fitted on: new models need `python -m anpr.training calibrate`.
    manifest = {
        "name": "anpr-default",
        "version": version,
        "detector": detector,
        **({"refiner": refiner} if refiner else {}),
        "reader": reader,
    }
    (out_dir / "manifest.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    print(f"reader: {info_r}\ndetector: {info_d}\nwritten to {out_dir}")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Command-line options of ``python -m anpr.training export``."""
    p.add_argument("--work", default=str(WORK_DIR))
    p.add_argument("--out", default=str(MODELS_DIR))
    p.add_argument("--size", type=int, default=SERVING_DETECTOR_SIZE, help="the detector's input size in the file")
    p.add_argument("--seed", type=int, default=12345)
    p.add_argument("--version", default="", help="version of the exported models in the manifest (default: today)")
    p.add_argument("--detector-only", action="store_true", help="export only the detector, without a manifest")
    p.add_argument(
        "--refiner-size",
        type=int,
        default=REFINER_SIZE,
        help="also export the detector at this input size as the refiner (a second look at each box; 0: none)",
    )
    p.add_argument(
        "--detector-onnx",
        default="",
        help="re-export this exported detector at --size instead of a checkpoint (the weights fit any size)",
    )
