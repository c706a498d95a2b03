"""Per-stage and end-to-end recognition time per 1080p JPEG on ONE CPU core, beside the peer reader's plates/s.

Usage (from the repository root)::

    .venv/bin/python bench/recognition/bench_pipeline.py [--models DIR] [--frames 100] [--cpu 1] [--json OUT.json]

One core: the process pins itself to ``--cpu`` (like ``taskset -c 1``), OpenCV runs one thread and ONNX Runtime
one intra-op thread. Frames are 1920x1080 JPEGs (quality 90) with one to three plates, synthesised in memory:
a real scene from ``../shared/data/openalpr-br`` scaled to 1080p with up to two more real plate crops pasted
in (never written to disk); without that data set, rendered plates on a noise background. Stages:

- ``decode``: JPEG to the detection image (reduced decode where the detector's input size allows);
- ``detect``: letterbox + detector + box mapping (only when the model set has a detector);
- ``refine``: choosing the boxes to look at, the refiner's second look at each, and its floor;
- ``read``: cropping (full resolution where needed), reader, syntax-aware post-processing and scoring of the boxes
  the refiner kept (until 2026-12-07 this row read every detector box above 0.25 and skipped the refiner: it was
  not the pipeline's own stage);
- ``end_to_end``: ``RecognitionPipeline.recognize`` on one frame, all of the above;
- ``read_labelled``: reading the known plate boxes of the frame (the reading stage alone, detector-independent).

The peer figure is the fast-plate-ocr cct-xs reader (``../shared/peers``) on the ground-truth crops of
openalpr-br, one crop per call, in the same process and on the same core.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from anpr.recognition import (
    Box,
    Detection,
    DetectorSpec,
    PipelineConfig,
    ReaderSpec,
    RecognitionOptions,
    RecognitionPipeline,
    SessionOptions,
)
from anpr.recognition.fast_plate_ocr import FastPlateOcrReader
from anpr.recognition.models import MODELS_DIR

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"
BR_SET = SHARED / "data" / "openalpr-br"
PEER = SHARED / "peers" / "fast-plate-ocr-cct-xs-v1-global"
Image = npt.NDArray[np.uint8]
Frame = tuple[bytes, list[Box]]
# The stages of RecognitionPipeline.recognize as it runs them, then the whole call, then the reading stage alone on
# the labelled boxes.
STAGES = ("decode", "detect", "refine", "read", "end_to_end", "read_labelled")


def _br_scenes() -> list[tuple[Image, Box]]:
    scenes = []
    for line in (BR_SET / "labels.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        image = cv2.imread(str(BR_SET / record["image"]))
        if image is not None:
            scenes.append((np.asarray(image, dtype=np.uint8), Box(*record["plates"][0]["box"])))
    return scenes


def _paste(frame: Image, plate: Image, rng: random.Random, taken: list[Box]) -> Box | None:
    width = rng.randint(110, 300)
    height = max(8, round(plate.shape[0] * width / plate.shape[1]))
    for _ in range(20):
        x, y = rng.randint(0, 1920 - width), rng.randint(0, 1080 - height)
        box = Box(x, y, width, height)
        if all(box.iou(other) == 0 and not _overlaps(box, other) for other in taken):
            frame[y : y + height, x : x + width] = cv2.resize(plate, (width, height), interpolation=cv2.INTER_AREA)
            return box
    return None


def _overlaps(a: Box, b: Box) -> bool:
    return not (a.x2 < b.x or b.x2 < a.x or a.y2 < b.y or b.y2 < a.y)


def make_frames(count: int, seed: int = 7) -> tuple[list[Frame], str]:
    """``count`` 1080p JPEG frames with 1-3 plates and their boxes, and a description of the source."""
    rng = random.Random(seed)
    frames: list[Frame] = []
    if (BR_SET / "labels.jsonl").is_file():
        scenes = _br_scenes()
        crops = [img[int(b.y) : int(b.y2), int(b.x) : int(b.x2)] for img, b in scenes]
        for i in range(count):
            image, box = scenes[i % len(scenes)]
            scale = 1920 / image.shape[1]
            resized = cv2.resize(image, (1920, round(image.shape[0] * scale)), interpolation=cv2.INTER_AREA)
            frame = np.zeros((1080, 1920, 3), dtype=np.uint8)
            # Keep the labelled plate inside the 1080 rows: crop vertically around it.
            top = int(min(max(0, box.y * scale + box.height * scale / 2 - 540), max(0, resized.shape[0] - 1080)))
            part = resized[top : top + 1080]
            frame[: part.shape[0]] = part
            boxes = [Box(box.x * scale, box.y * scale - top, box.width * scale, box.height * scale)]
            for _ in range(rng.randint(0, 2)):
                pasted = _paste(frame, rng.choice(crops), rng, boxes)
                if pasted is not None:
                    boxes.append(pasted)
            ok, data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
            assert ok
            frames.append((data.tobytes(), boxes))
        return frames, "openalpr-br scenes scaled to 1920x1080 plus 0-2 pasted real BR plate crops (in memory)"
    for _ in range(count):
        noise = np.random.default_rng(rng.randint(0, 2**31)).integers(0, 255, (1080, 1920, 3), dtype=np.uint8)
        frame = np.asarray(cv2.GaussianBlur(noise, (9, 9), 0), dtype=np.uint8)
        boxes = []
        for _ in range(rng.randint(1, 3)):
            plate = np.full((64, 256, 3), 255, dtype=np.uint8)
            text = "".join(rng.choice("ABCDEFGHJKLMNPRSTVWXYZ0123456789") for _ in range(7))
            cv2.putText(plate, text, (10, 48), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (0, 0, 0), 4, cv2.LINE_AA)
            pasted = _paste(frame, plate, rng, boxes)
            if pasted is not None:
                boxes.append(pasted)
        ok, data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
        assert ok
        frames.append((data.tobytes(), boxes))
    return frames, "rendered plates on blurred noise (openalpr-br not present)"


def _summary(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    return {
        "median_ms": round(statistics.median(ordered) * 1000, 3),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 3),
        "p90_ms": round(ordered[int(0.9 * (len(ordered) - 1))] * 1000, 3),
    }


def _timed(fn: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    value = fn(*args)
    return value, time.perf_counter() - start


def bench_pipeline(pipeline: RecognitionPipeline, frames: list[Frame]) -> dict[str, Any]:
    """Stage and end-to-end timings over ``frames`` (after a short warm-up)."""
    for data, boxes in frames[:5]:
        if pipeline.detector is not None:
            pipeline.recognize([data])
        pipeline.read_plates([pipeline.decode(data).crop(box) for box in boxes])
    stages: dict[str, list[float]] = {name: [] for name in STAGES}
    options = RecognitionOptions()
    boxes_refined = boxes_read = plates_found = 0
    full_decodes = 0
    floor = pipeline.detection_floor_for(options)
    for data, boxes in frames:
        image, seconds = _timed(pipeline.decode, data)
        stages["decode"].append(seconds)
        if pipeline.detector is not None:
            (found,), seconds = _timed(lambda image=image: pipeline.detect([image], min_score=floor))
            stages["detect"].append(seconds)

            def refine(image: Any = image, found: Any = found) -> tuple[int, list[Detection]]:
                selected = pipeline.select(found, options)
                return len(selected), pipeline.worth_reading(pipeline.refine([(image, d) for d in selected]), options)

            (refined, to_read), seconds = _timed(refine)
            stages["refine"].append(seconds)
            boxes_refined += refined
            boxes_read += len(to_read)

            def read(image: Any = image, to_read: Any = to_read) -> int:
                raws = pipeline.read([pipeline.crop(image, d) for d in to_read])
                return len(pipeline.plates(to_read, raws, options, image=image))

            count, seconds = _timed(read)
            plates_found += count
            stages["read"].append(seconds)
            full_decodes += image.reduction > 1 and image._full is not None
            _, seconds = _timed(pipeline.recognize, [data])
            stages["end_to_end"].append(seconds)

        def read_labelled(image: Any = image, boxes: list[Box] = boxes) -> None:
            crops = [image.crop(box, min_width=pipeline.min_crop_width) for box in boxes]
            pipeline.read_plates(crops)

        _, seconds = _timed(read_labelled)
        stages["read_labelled"].append(seconds)
    result: dict[str, Any] = {name: _summary(values) for name, values in stages.items() if values}
    if stages["end_to_end"]:
        result["frames_per_second"] = round(1 / statistics.fmean(stages["end_to_end"]), 2)
        result["boxes_refined_per_frame"] = round(boxes_refined / len(frames), 2)
        result["boxes_read_per_frame"] = round(boxes_read / len(frames), 2)
        result["plates_found_per_frame"] = round(plates_found / len(frames), 2)
        result["full_decodes"] = full_decodes
    result["labelled_plates_per_frame"] = round(sum(len(b) for _, b in frames) / len(frames), 2)
    return result


def bench_peer(options: SessionOptions) -> dict[str, Any] | None:
    """The peer reader's plates per second on openalpr-br ground-truth crops, one crop per call."""
    model, config = PEER / "cct_xs_v1_global.onnx", PEER / "cct_xs_v1_global_plate_config.yaml"
    if not model.is_file() or not (BR_SET / "labels.jsonl").is_file():
        return None
    reader = FastPlateOcrReader(ReaderSpec("fast-plate-ocr", model, config, "peer", "cct-xs-v1"), options)
    crops = [img[int(b.y) : int(b.y2), int(b.x) : int(b.x2)] for img, b in _br_scenes()]
    for crop in crops[:10]:
        reader.read([crop])
    seconds = [_timed(reader.read, [crop])[1] for crop in crops * 3]
    return {"per_plate": _summary(seconds), "plates_per_second": round(1 / statistics.fmean(seconds), 1)}


def _markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# Recognition pipeline on one core ({report['machine']})",
        "",
        f"Models: {report['models']}; frames: {report['frames']} x 1920x1080 JPEG, {report['frame_source']}.",
        "",
        "| stage | median ms | mean ms | p90 ms |",
        "|---|---|---|---|",
    ]
    for stage in STAGES:
        if stage in report["pipeline"]:
            s = report["pipeline"][stage]
            lines.append(f"| {stage} | {s['median_ms']} | {s['mean_ms']} | {s['p90_ms']} |")
    pipeline = report["pipeline"]
    if "frames_per_second" in pipeline:
        lines.append(f"\nFrames per second per core (end to end): {pipeline['frames_per_second']}")
        lines.append(
            f"Per frame: {pipeline['boxes_refined_per_frame']} boxes refined, {pipeline['boxes_read_per_frame']} read, "
            f"{pipeline['plates_found_per_frame']} plates reported, {pipeline['labelled_plates_per_frame']} "
            f"pasted/labelled; reduced JPEG decoding down to {report['reduced_decode_side']} px long side; "
            f"full-resolution re-decodes: {pipeline['full_decodes']} of {report['frames']} frames"
        )
    if report.get("peer"):
        peer = report["peer"]
        lines.append(
            f"Peer fast-plate-ocr cct-xs reader: {peer['plates_per_second']} plates/s per core "
            f"(median {peer['per_plate']['median_ms']} ms per plate crop)"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print markdown (and write JSON with ``--json``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=Path, default=MODELS_DIR)
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--cpu", type=int, default=1, help="the one CPU core to pin to (-1: do not pin)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures as JSON here")
    parser.add_argument(
        "--reduced-decode-side",
        type=int,
        default=PipelineConfig().reduced_decode_side,
        help="reduce JPEG decoding while the long side stays >= this (0: down to the detector input size)",
    )
    parser.add_argument(
        "--min-detection-confidence",
        type=float,
        default=PipelineConfig().min_detection_confidence,
        help="detector score threshold (the pipeline default unless given)",
    )
    args = parser.parse_args(argv)
    if args.cpu >= 0 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    cv2.setNumThreads(1)
    options = SessionOptions(intra_op_threads=1)
    config = PipelineConfig(
        reduced_decode_side=args.reduced_decode_side, min_detection_confidence=args.min_detection_confidence
    )
    pipeline = RecognitionPipeline.load(args.models, session_options=options, config=config)
    frames, source = make_frames(args.frames)
    detector: DetectorSpec | None = pipeline.manifest.detector
    report = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, pinned to CPU {args.cpu}",
        "models": f"{pipeline.info.name} {pipeline.info.version}"
        + (f" (detector input {pipeline.detect_size})" if detector else " (no detector)"),
        "provider": pipeline.info.execution_provider,
        "frames": len(frames),
        "frame_source": source,
        "reduced_decode_side": args.reduced_decode_side,
        "min_detection_confidence": args.min_detection_confidence,
        "pipeline": bench_pipeline(pipeline, frames),
        "peer": bench_peer(options),
    }
    print(_markdown(report))
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
