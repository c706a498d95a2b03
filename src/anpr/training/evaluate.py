"""Measure a model set through the serving pipeline: synthetic held-out sets, and the real sets in ``shared/data``
as validation only.

Everything runs through :class:`~anpr.recognition.RecognitionPipeline`, exactly as the recognize service
and ``anpr read`` run it (decoding, detection threshold, crop margins, syntax-aware correction), on one core: one
ONNX Runtime thread, one OpenCV thread.

- Reader: exact (after correction), raw exact (before), O=0/I=1-folded and within-one-edit accuracy and time per
  crop, on openalpr-br crops (labelled boxes cut from the photos), openalpr-us-platecrops (whole images) and seeded
  synthetic crops; the fast-plate-ocr peer (``shared/peers``) on the same crops in the same run.
- Detector: recall at IoU >= 0.3 on openalpr-br photos and on seeded synthetic 1080p scenes, boxes per image.
- End to end: seeded synthetic 1080p scenes with plates of 80-400 px, and close-ups (``--close-ups``, 400-900 px).
- Speed: decode + detect + read of synthetic 1080p JPEGs with one to three plates.
- Crop margins (``--margins``): the synthetic scenes end to end with other margins around the detector boxes.
- Serving widths (``--widths``): the reader on the synthetic held-out crops at other line widths than its
  manifest's, which is how the shipped ``min_width`` / ``max_width`` are chosen.

Needs onnxruntime, not torch.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from anpr.cli.evaluate import IOU_THRESHOLD, best_match, fold, share_interval, within_one_edit
from anpr.recognition import (
    Box,
    ModelManifest,
    PipelineConfig,
    ReaderSpec,
    RecognitionPipeline,
    SessionOptions,
)
from anpr.recognition.models import MODELS_DIR
from anpr.synth.crops import reader_sample
from anpr.synth.fonts import missing_fonts
from anpr.synth.scene import render_scene

DATA = Path(__file__).resolve().parents[4] / "shared" / "data"
PEER = Path(__file__).resolve().parents[4] / "shared" / "peers" / "fast-plate-ocr-cct-xs-v1-global"
HELD_OUT_SEED = 987_654  # never used by training (training draws from seeds 0 and 1)
ONE_CORE = SessionOptions(intra_op_threads=1)
MISSED = 1 << 30  # the rank of a labelled plate that no detection matched
Image = npt.NDArray[np.uint8]
Crop = tuple[Image, str]


def load(models: Path, config: PipelineConfig | None = None) -> RecognitionPipeline:
    """The model set at ``models`` on one core."""
    cv2.setNumThreads(1)
    return RecognitionPipeline.load(models, session_options=ONE_CORE, config=config)


def load_peer() -> RecognitionPipeline | None:
    """The fast-plate-ocr cct-xs peer as a reading-only pipeline, when ``shared/peers`` has it."""
    if not PEER.is_dir():
        return None
    spec = ReaderSpec(
        "fast-plate-ocr",
        PEER / "cct_xs_v1_global.onnx",
        PEER / "cct_xs_v1_global_plate_config.yaml",
        "fast-plate-ocr-cct-xs",
        "v1-global",
    )
    return RecognitionPipeline(ModelManifest("peer", "cct-xs-v1", PEER, spec), session_options=ONE_CORE)


def corner_box(x1: float, y1: float, x2: float, y2: float) -> Box:
    """A pipeline box from x1, y1, x2, y2 corners (how synthetic scenes give their plates)."""
    return Box(float(x1), float(y1), float(x2 - x1), float(y2 - y1))


def _labels(name: str) -> list[dict[str, Any]]:
    lines = (DATA / name / "labels.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def real_crops(name: str) -> list[Crop]:
    """(BGR crop, label) of every labelled plate of a real set: the labelled box cut out of the image."""
    out = []
    for item in _labels(name):
        img = cv2.imread(str(DATA / name / item["image"]), cv2.IMREAD_COLOR)
        if img is None:
            raise FileNotFoundError(DATA / name / item["image"])
        for plate in item["plates"]:
            x, y, w, h = plate["box"]
            out.append((np.ascontiguousarray(img[y : y + h, x : x + w], dtype=np.uint8), str(plate["text"])))
    return out


def synthetic_crops(n: int) -> list[Crop]:
    """``n`` held-out synthetic crops (BGR, as cut, full camera effects) and their labels."""
    rng = np.random.default_rng(HELD_OUT_SEED)
    crops = []
    for _ in range(n):
        sample = reader_sample(rng, None)
        crops.append((np.ascontiguousarray(sample.image[:, :, ::-1], dtype=np.uint8), sample.label))
    return crops


def score_reader(pipeline: RecognitionPipeline, crops: list[Crop]) -> dict[str, Any]:
    """Exact (corrected), raw exact, folded and one-edit accuracy and median milliseconds per crop."""
    exact = raw = folded = one_edit = 0
    times: list[float] = []
    misses: list[str] = []
    for img, label in crops:
        t = time.perf_counter()
        reading = pipeline.read_plates([img])[0]
        times.append(time.perf_counter() - t)
        text = reading.text
        exact += text == label
        raw += reading.raw_text == label
        folded += fold(text) == fold(label)
        one_edit += within_one_edit(text, label)
        if text != label and len(misses) < 25:
            misses.append(f"{label}->{text}")
    n = max(len(crops), 1)
    return {
        "n": len(crops),
        "exact": exact / n,
        "raw_exact": raw / n,
        "folded": folded / n,
        "one_edit": one_edit / n,
        "ms_median": 1000 * statistics.median(times) if times else 0.0,
        "misses": misses,
    }


def _detect(pipeline: RecognitionPipeline, data: bytes) -> list[Box]:
    """The detected boxes, best first."""
    return [d.box for d in pipeline.detect([pipeline.decode(data)])[0]]


def _jpeg(rgb: Image, quality: int = 90) -> bytes:
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(rgb[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()


def synthetic_detector(pipeline: RecognitionPipeline, n: int) -> dict[str, Any]:
    """Recall (IoU >= 0.3) over plates of ``n`` held-out synthetic 1920 x 1080 scenes, by plate width."""
    rng = np.random.default_rng(HELD_OUT_SEED + 1)
    found = total = boxes = 0
    by_size: dict[str, list[int]] = {"20-40": [0, 0], "40-80": [0, 0], "80-400": [0, 0]}
    for _ in range(n):
        scene = render_scene(rng, 1920, 1080)
        dets = _detect(pipeline, _jpeg(scene.image, 95))
        boxes += len(dets)
        for b in scene.boxes:
            plate = corner_box(*b)
            hit = any(plate.iou(d) >= IOU_THRESHOLD for d in dets)
            w = plate.width
            key = "20-40" if w < 40 else "40-80" if w < 80 else "80-400"
            by_size[key][0] += hit
            by_size[key][1] += 1
            found += hit
            total += 1
    return {
        "plates": total,
        "recall": found / max(total, 1),
        "recall_by_width": {k: v[0] / max(v[1], 1) for k, v in by_size.items()},
        "boxes_per_image": boxes / max(n, 1),
    }


@dataclass(frozen=True)
class EncodedScene:
    """A held-out synthetic frame as the pipeline receives it (JPEG), its plates (x1, y1, x2, y2; labels) and which
    of them a bar crosses (:attr:`anpr.synth.scene.Scene.occluded`)."""

    jpeg: bytes
    boxes: npt.NDArray[np.float32]
    labels: tuple[str, ...]
    occluded: tuple[bool, ...]


def end_to_end_scenes(n: int, *, close_ups: bool = False) -> list[EncodedScene]:
    """``n`` held-out synthetic 1920 x 1080 JPEGs with 1-3 plates of 80-400 px, drawn once for every comparison;
    ``close_ups``: 1-2 plates of 400-900 px instead (another seed), as close cameras see them."""
    rng = np.random.default_rng(HELD_OUT_SEED + (5 if close_ups else 3))
    widths = (400.0, 900.0) if close_ups else (80.0, 400.0)
    out = []
    for _ in range(n):
        scene = render_scene(
            rng, 1920, 1080, max_plates=2 if close_ups else 3, min_width_1080p=widths[0], max_width_1080p=widths[1]
        )
        out.append(EncodedScene(_jpeg(scene.image), scene.boxes, scene.labels, scene.occluded))
    return out


def synthetic_end_to_end(pipeline: RecognitionPipeline, scenes: Sequence[EncodedScene]) -> dict[str, Any]:
    """Whole-frame reads of ``scenes`` (:func:`end_to_end_scenes`): the plate whose box overlaps the labelled one
    best (IoU >= 0.3) must read exactly (or folded) as labelled.

    A tenth of the plates have a bar drawn across them (the detector must still find them), which hides one or two
    characters from any reader: ``legible`` repeats the reading figures without those plates. ``precision`` is the
    share of all non-empty readings returned that are exactly the text of the plate they overlap, with its 95 %
    interval (100 scenes give about 130 readings: too few to tell 99 % from 97 %), ``wrong_readings`` says why
    the others are not, and ``partial_readings`` counts those returned although the reader marked characters as
    hidden.
    """
    tallies: dict[str, Counter[str]] = {"all": Counter(), "legible": Counter()}
    reported = right = partial = 0
    wrong: Counter[str] = Counter()
    for scene in scenes:
        result = pipeline.recognize([scene.jpeg])[0]
        truth = [
            (corner_box(*b), label, hidden)
            for b, label, hidden in zip(scene.boxes, scene.labels, scene.occluded, strict=True)
        ]
        for plate in result.plates:
            if plate.reading.text:
                reported += 1
                partial += plate.reading.hidden_characters > 0
                under = [(box, t, hidden) for box, t, hidden in truth if plate.box.iou(box) >= IOU_THRESHOLD]
                if any(plate.reading.text == t for _, t, _ in under):
                    right += 1
                else:
                    wrong[wrong_kind(plate.box, under)] += 1
        for b, label, hidden in zip(scene.boxes, scene.labels, scene.occluded, strict=True):
            index = best_match([p.box for p in result.plates], corner_box(*b))
            text = result.plates[index].reading.text if index is not None else None
            for key in ("all",) if hidden else ("all", "legible"):
                tallies[key].update(
                    plates=1,
                    detected=index is not None,
                    exact=text == label,
                    folded=text is not None and fold(text) == fold(label),
                )

    def shares(tally: Counter[str]) -> dict[str, Any]:
        n = max(tally["plates"], 1)
        return {
            "plates": tally["plates"],
            "detection_recall": tally["detected"] / n,
            "exact": tally["exact"] / n,
            "folded": tally["folded"] / n,
        }

    return {
        **shares(tallies["all"]),
        "legible": shares(tallies["legible"]),
        "readings": reported,
        "readings_per_scene": reported / max(len(scenes), 1),
        # Readings that are exactly the text of the plate under them; the recall beside it is "legible exact".
        "precision": right / max(reported, 1),
        "precision_interval_95": share_interval(right, reported),
        # The readings that are not: of a plate with characters hidden, of no plate, or of a legible plate misread.
        "wrong_readings": {kind: wrong[kind] for kind in WRONG_KINDS},
        # Readings reported although the reader said some characters were hidden (the scorer should keep them out).
        "partial_readings": partial,
    }


WRONG_KINDS = ("hidden_characters", "no_plate", "misread")


def wrong_kind(box: Box, under: Sequence[tuple[Box, str, bool]]) -> str:
    """Why a reading is not the text of a plate: ``under`` holds the labelled plates its box overlaps."""
    if not under:
        return "no_plate"
    _, _, hidden = max(under, key=lambda item: item[0].iou(box))
    return "hidden_characters" if hidden else "misread"


def real_detector(pipeline: RecognitionPipeline) -> dict[str, Any]:
    """Recall (IoU >= 0.3) of the labelled plate on openalpr-br photos, boxes and milliseconds per photo."""
    found, boxes, times, misses, ranks = 0, 0, [], [], []
    items = _labels("openalpr-br")
    for item in items:
        data = (DATA / "openalpr-br" / item["image"]).read_bytes()
        t = time.perf_counter()
        dets = _detect(pipeline, data)  # best first
        times.append(time.perf_counter() - t)
        boxes += len(dets)
        label = Box(*item["plates"][0]["box"])
        hits = [i for i, d in enumerate(dets) if label.iou(d) >= IOU_THRESHOLD]
        found += bool(hits)
        ranks.append(hits[0] if hits else MISSED)
        if not hits:
            misses.append(item["image"])
    return {
        "n": len(items),
        "recall": found / len(items),
        "labelled_plate_ranked_first": sum(r == 0 for r in ranks) / len(items),
        "labelled_plate_in_top_5": sum(r < 5 for r in ranks) / len(items),
        "boxes_per_image": boxes / len(items),
        "ms_median": 1000 * statistics.median(times),
        "misses": misses[:20],
    }


def speed_1080p(pipeline: RecognitionPipeline, frames: int, peer: RecognitionPipeline | None) -> dict[str, Any]:
    """Milliseconds for decode + detect + read of 1080p JPEGs with 1 to 3 plates, one core; readers' plates/s."""
    rng = np.random.default_rng(HELD_OUT_SEED + 2)
    jpegs = [
        _jpeg(render_scene(rng, 1920, 1080, max_plates=3, min_width_1080p=80, max_width_1080p=400).image)
        for _ in range(frames)
    ]
    pipeline.recognize(jpegs[:1])  # warm-up
    times, decode, detect, refine, read, plates = [], [], [], [], [], 0
    for data in jpegs * 3:
        t = time.perf_counter()
        result = pipeline.recognize([data])[0]
        times.append(time.perf_counter() - t)
        decode.append(result.times.decode)
        detect.append(result.times.detect)
        refine.append(result.times.refine)
        read.append(result.times.read)
        plates += len(result.plates)
    ms = sorted(1000 * v for v in times)
    out: dict[str, Any] = {
        "frames": len(ms),
        "ms_median": statistics.median(ms),
        "ms_p95": ms[int(0.95 * (len(ms) - 1))],
        "fps_per_core": 1000 / statistics.median(ms),
        "ms_median_by_stage": {
            "decode": 1000 * statistics.median(decode),
            "detect": 1000 * statistics.median(detect),
            "refine": 1000 * statistics.median(refine),
            "read": 1000 * statistics.median(read),
        },
        "plates_per_frame": plates / len(ms),
    }
    crops = real_crops("openalpr-br") if DATA.is_dir() else synthetic_crops(60)
    for name, reader in (("reader", pipeline), ("peer", peer)):
        if reader is not None:
            out[f"{name}_plates_per_second"] = _plates_per_second(reader.read_plates, [c for c, _ in crops])
    return out


def reader_widths(manifest: ModelManifest, crops: list[Crop], widths: list[tuple[int, int]]) -> list[dict[str, Any]]:
    """The reader's figures on ``crops`` with each (min_width, max_width) in place of the manifest's.

    ``narrow`` repeats them on the crops narrow enough for a minimum to stretch (natural width at the reader's
    height below the widest minimum asked for): only those can read differently, and they are a third to a half
    of the synthetic crops, so the whole set dilutes a difference between minimums.
    """
    pipelines = [_reader_only(manifest, low, high) for low, high in widths]
    height = pipelines[0].reader.input_height if pipelines else 0
    widest = max((low for low, _ in widths), default=0)
    narrow = [c for c in crops if c[0].shape[1] * height < widest * c[0].shape[0]]
    out = []
    for (low, high), pipeline in zip(widths, pipelines, strict=True):
        figures = _without_misses(score_reader(pipeline, crops))
        figures["narrow"] = _without_misses(score_reader(pipeline, narrow)) if narrow else {"n": 0}
        out.append({"min_width": low, "max_width": high, **figures})
    return out


def crop_margins(manifest: ModelManifest, scenes: Sequence[EncodedScene], margins: list[float]) -> list[dict[str, Any]]:
    """Synthetic end to end with each crop margin (the fraction of a box added on every side before reading)."""
    return [
        {
            "crop_margin": margin,
            **synthetic_end_to_end(
                RecognitionPipeline(manifest, session_options=ONE_CORE, config=PipelineConfig(crop_margin=margin)),
                scenes,
            ),
        }
        for margin in margins
    ]


def _reader_only(manifest: ModelManifest, min_width: int, max_width: int) -> RecognitionPipeline:
    reader = replace(manifest.reader, min_width=min_width, max_width=max_width)
    return RecognitionPipeline(replace(manifest, reader=reader, detector=None), session_options=ONE_CORE)


def _without_misses(figures: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in figures.items() if k != "misses"}


def _width_pair(text: str) -> tuple[int, int]:
    low, _, high = text.partition(":")
    try:
        pair = int(low), int(high)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected MIN:MAX line widths in pixels, got {text!r}") from None
    if not 8 <= pair[0] <= pair[1]:
        raise argparse.ArgumentTypeError(f"expected 8 <= MIN <= MAX, got {text!r}")
    return pair


def _plates_per_second(read: Callable[[list[Image]], object], crops: list[Image]) -> float:
    per = []
    for crop in crops:
        t = time.perf_counter()
        read([crop])
        per.append(time.perf_counter() - t)
    return 1 / statistics.median(per)


def run(args: argparse.Namespace) -> None:
    """Print every figure as one JSON object."""
    pipeline = load(Path(args.models))
    peer = load_peer()
    report: dict[str, Any] = {
        "models": f"{pipeline.info.name} {pipeline.info.version}",
        "missing_fonts": list(missing_fonts()),
    }
    synthetic = synthetic_crops(args.synthetic)
    report["synthetic_reader"] = score_reader(pipeline, synthetic)
    report["synthetic_detector"] = synthetic_detector(pipeline, args.scenes)
    scenes = end_to_end_scenes(args.scenes)
    report["synthetic_end_to_end"] = synthetic_end_to_end(pipeline, scenes)
    if args.close_ups:
        close_ups = end_to_end_scenes(args.close_ups, close_ups=True)
        report["synthetic_close_ups_end_to_end"] = synthetic_end_to_end(pipeline, close_ups)
    if DATA.is_dir():
        for name in ("openalpr-br", "openalpr-us-platecrops"):
            crops = real_crops(name)
            report[f"{name}_reader"] = score_reader(pipeline, crops)
            if peer is not None:
                report[f"{name}_peer"] = score_reader(peer, crops)
        report["openalpr-br_detector"] = real_detector(pipeline)
    if args.widths:
        width_crops = synthetic_crops(args.width_crops) if args.width_crops > len(synthetic) else synthetic
        report["synthetic_reader_widths"] = reader_widths(pipeline.manifest, width_crops, args.widths)
    if args.margins:
        report["synthetic_end_to_end_margins"] = crop_margins(pipeline.manifest, scenes, args.margins)
    if args.speed:
        report["speed_1080p"] = speed_1080p(pipeline, args.speed, peer)
    text = json.dumps(report, indent=1)
    print(text)
    if args.json_out:
        Path(args.json_out).write_text(text)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Command-line options of ``python -m anpr.training evaluate``."""
    p.add_argument("--models", default=str(MODELS_DIR))
    p.add_argument("--synthetic", type=int, default=500)
    # 500 scenes give about 660 readings: the precision's 95 % interval is about 5 points wide (100 scenes gave 126
    # readings, an interval of 8 points, and a figure 8 points above the larger sample's).
    p.add_argument("--scenes", type=int, default=500)
    p.add_argument(
        "--close-ups",
        type=int,
        default=250,
        help="also read this many held-out close-up scenes end to end (1-2 plates of 400-900 px at 1080p)",
    )
    p.add_argument("--json-out", default="")
    p.add_argument("--speed", type=int, default=0, help="also time decode+detect+read on this many 1080p frames")
    p.add_argument(
        "--widths",
        type=_width_pair,
        nargs="*",
        default=[],
        metavar="MIN:MAX",
        help="also score the reader on the synthetic crops at these line widths (e.g. 96:160 128:160)",
    )
    p.add_argument(
        "--margins",
        type=float,
        nargs="*",
        default=[],
        metavar="M",
        help="also read the synthetic scenes end to end with these crop margins (e.g. 0 0.05 0.1)",
    )
    p.add_argument(
        "--width-crops",
        type=int,
        default=0,
        help="synthetic crops for --widths when more than --synthetic (the first --synthetic are the same crops)",
    )
