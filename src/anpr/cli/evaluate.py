"""``anpr eval``: score the recognition pipeline on a labelled set.

Reads ``DATASET_DIR/labels.jsonl`` (one object per image: ``{"image": "images/x.jpg", "size": [W, H],
"plates": [{"text": "ABC1234", "box": [x, y, w, h]}]}``) and reports, over the labelled plates:

- ``detection_recall``: share of labelled plates with a detection of IoU >= 0.3 (end-to-end mode only);
- ``exact_accuracy``: the matched detection's corrected text equals the label;
- ``folded_accuracy``: equal after folding O to 0 and I to 1 on both sides;
- ``one_edit_accuracy``: within one edit (insertion, deletion or substitution);
- ``raw_exact_accuracy``: like ``exact_accuracy`` but on the reader's text before syntax-aware correction;
- ``readings_per_image``: readings returned per image; ``extra_readings_per_image``: those that are not the
  reading matched to a labelled plate (the sets label one plate per image, so a readable plate of another car
  counts as extra too: an upper bound on junk); ``extra_plausible_per_image``: the extra readings that look like a
  plate of another car (4 to 8 characters fitting a plate format that constrains its characters);
- ``median_seconds`` and ``p95_seconds``: recognition time per image;
- with ``--losses`` (end-to-end mode): ``losses``, the labelled plates counted by the stage where each was read or
  lost (:mod:`anpr.cli.losses`), and ``losses_by_width``, the same counts by the labelled plate's width in pixels
  (its stages with no plate left out);
- ``exact_interval_95`` and ``folded_interval_95``: what the set's size lets the two shares say (Wilson, 95 %);
- with ``--against FILE`` (an earlier run's ``--outcomes FILE``): ``against``, the plates only one of the two runs
  reads right and the exact McNemar p-value (:mod:`anpr.cli.compare`).

A plate that was not detected counts as wrongly read. In crop mode (``--crops``, or automatically when every
labelled box is the whole image) the labelled box is cut out and only the reader runs: that scores reading alone.
Only aggregate figures are printed, never plate text.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import statistics
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anpr.cli.compare import Outcome, compare, read_outcomes, write_outcomes
from anpr.cli.losses import STAGES, WIDTHS, floors, stage, unfiltered, width_bucket
from anpr.cli.read import add_model_arguments, load_pipeline

IOU_THRESHOLD = 0.3


@dataclass(frozen=True, slots=True)
class LabelledPlate:
    """One labelled plate of one image."""

    text: str
    box: tuple[int, int, int, int]


@dataclass(frozen=True, slots=True)
class LabelledImage:
    """One line of ``labels.jsonl``."""

    path: Path
    size: tuple[int, int] | None
    plates: tuple[LabelledPlate, ...]
    name: str = ""  # as labels.jsonl names it (``images/x.jpg``): the same across runs from other directories


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``anpr eval``."""
    parser.add_argument("--json", action="store_true", help="print one JSON object with the figures")
    add_model_arguments(parser)
    parser.add_argument(
        "--crops",
        action="store_true",
        help="read the labelled boxes directly (reading stage only); automatic when every box is the whole image",
    )
    parser.add_argument("--limit", type=int, default=0, metavar="N", help="only the first N images")
    parser.add_argument(
        "--losses",
        action="store_true",
        help="also say where each labelled plate was lost (no box, below a floor, read wrong), in all and by the "
        "plate's width in pixels (a second pass with every floor off, about twice the time)",
    )
    parser.add_argument(
        "--outcomes",
        type=Path,
        metavar="FILE",
        help="also write whether each labelled plate was read right, for --against (JSON lines: image name, plate "
        "number, right or not; no reading)",
    )
    parser.add_argument(
        "--against",
        type=Path,
        metavar="FILE",
        help="compare with an earlier run's --outcomes file, plate by plate (exact McNemar test)",
    )
    parser.add_argument("dataset", type=Path, metavar="DATASET_DIR", help="directory holding labels.jsonl")


def load_labels(dataset: Path) -> list[LabelledImage]:
    """Parse ``labels.jsonl``; raises ``ValueError`` naming the line on malformed input."""
    out = []
    path = dataset / "labels.jsonl"
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            size = tuple(record["size"]) if record.get("size") else None
            plates = tuple(
                LabelledPlate(
                    str(p["text"]).upper().replace(" ", "").replace("-", ""),
                    (int(p["box"][0]), int(p["box"][1]), int(p["box"][2]), int(p["box"][3])),
                )
                for p in record["plates"]
            )
            out.append(LabelledImage(dataset / record["image"], size, plates, str(record["image"])))
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise ValueError(f"{path}:{number}: malformed label line ({exc})") from exc
    return out


def fold(text: str) -> str:
    """O -> 0 and I -> 1: US plates often draw them alike and their labels are not consistent."""
    return text.replace("O", "0").replace("I", "1")


def same_folded(label: str, text: str) -> bool:
    """``text`` reads as ``label`` once both are folded."""
    return fold(text) == fold(label)


def within_one_edit(a: str, b: str) -> bool:
    """Levenshtein distance <= 1."""
    if a == b:
        return True
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) == 1
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return any(long_[:i] + long_[i + 1 :] == short for i in range(len(long_)))


def share_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a share (95 % for ``z`` = 1.96): what a figure measured on ``n`` items can say.

    openalpr-br's 114 plates put 96.5 % exact anywhere in 91.3-98.6 %: one plate moves the figure 0.9 points, and
    two model sets are told apart by the plates they read differently, not by their shares alone.
    """
    if n <= 0:
        return (0.0, 1.0)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4))


def best_match(boxes: Sequence[Any], target: Any) -> int | None:
    """Index of the box overlapping ``target`` most, or None when none reaches :data:`IOU_THRESHOLD`."""
    if not boxes:
        return None
    best = max(range(len(boxes)), key=lambda i: boxes[i].iou(target))
    return best if boxes[best].iou(target) >= IOU_THRESHOLD else None


def _plausible(reading: Any) -> bool:
    """A reading that could be another car's plate: 4 to 8 characters fitting a format that constrains them."""
    return 4 <= len(reading.text) <= 8 and reading.format is not None and reading.format.specific


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    k = (len(ordered) - 1) * q
    low = int(k)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def whole_image(image: LabelledImage) -> bool:
    """Every labelled box of ``image`` is the whole image: a set of plate crops, read without detection."""
    return image.size is not None and all(
        p.box[0] == 0 and p.box[1] == 0 and (p.box[2], p.box[3]) == image.size for p in image.plates
    )


def evaluate(
    pipeline: Any,
    images: list[LabelledImage],
    *,
    crops: bool,
    hints: tuple[str, ...] = (),
    min_confidence: float | None = None,
    losses: bool = False,
    outcomes: list[Outcome] | None = None,
) -> dict[str, Any]:
    """Run the pipeline over ``images`` and compute the figures (see the module docstring); each labelled plate's
    :class:`~anpr.cli.compare.Outcome` is appended to ``outcomes`` when given."""
    from anpr.recognition import Box, ImageInputError, RecognitionOptions, decode_image

    options = RecognitionOptions(format_hints=hints, min_reading_confidence=min_confidence)
    losses = losses and not crops
    stages: Counter[str] = Counter(dict.fromkeys(STAGES, 0))
    by_width: dict[str, Counter[str]] = {name: Counter() for name, _ in WIDTHS}
    limits = floors(pipeline, options) if losses else None

    plates = detected = exact = folded = one_edit = raw_exact = returned = extra = extra_plausible = 0
    seconds: list[float] = []
    unreadable = 0
    if images:
        # One untimed pass so that lazy initialisation inside ONNX Runtime does not land on the first image.
        first = images[0].path.read_bytes()
        if crops:
            pipeline.read_plates([decode_image(first).full()])
        else:
            pipeline.recognize([first])
    for image in images:
        data = image.path.read_bytes()
        readings: list[tuple[Any, str, str]] = []  # (box, text, raw text)
        reported: list[Any] = []  # the PlateResults behind them (end-to-end mode)
        plausible: list[bool] = []  # per reading: 4-8 characters in a specific plate format
        start = time.perf_counter()
        if crops:
            try:
                # Full resolution: the labelled box is the crop, nothing is detected on a reduced frame.
                decoded = decode_image(data, limits=pipeline.config.limits)
            except ImageInputError:  # a bad image counts as unread, the run goes on
                decoded = None
            if decoded is not None:
                boxes = [Box(*p.box) for p in image.plates]
                cut = [decoded.crop(box) for box in boxes]
                for box, reading in zip(boxes, pipeline.read_plates(cut, options), strict=True):
                    readings.append((box, reading.text, reading.raw_text))
            error = decoded is None
        else:
            result = pipeline.recognize([data], options)[0]
            error = result.error is not None
            reported = list(result.plates)
            readings = [(p.box, p.reading.text, p.reading.raw_text) for p in reported]
            plausible = [_plausible(p.reading) for p in reported]
        seconds.append(time.perf_counter() - start)
        plate_stages: list[str | None] = [None] * len(image.plates)
        if limits is not None:
            candidates = [] if error else list(pipeline.recognize([data], unfiltered(options))[0].plates)
            for number, label in enumerate(image.plates):
                target = Box(*label.box)
                mine = best_match([p.box for p in reported], target)
                theirs = best_match([p.box for p in candidates], target)
                where = stage(
                    reported[mine] if mine is not None else None,
                    candidates[theirs] if theirs is not None else None,
                    functools.partial(same_folded, label.text),
                    limits,
                )
                stages[where] += 1
                by_width[width_bucket(label.box[2])][where] += 1
                plate_stages[number] = where
        unreadable += error
        returned += len(readings)
        matched: set[int] = set()
        for number, label in enumerate(image.plates):
            plates += 1
            target = Box(*label.box)
            index = best_match([box for box, _, _ in readings], target)
            right = right_folded = False  # an undetected plate counts as read wrong
            if index is not None:
                matched.add(index)
                detected += 1
                _, text, raw = readings[index]
                right, right_folded = text == label.text, same_folded(label.text, text)
                raw_exact += raw == label.text
                one_edit += within_one_edit(text, label.text)
            exact += right
            folded += right_folded
            if outcomes is not None:
                outcomes.append(
                    Outcome(image.name or str(image.path), number, right, right_folded, plate_stages[number])
                )
        extra += len(readings) - len(matched)
        extra_plausible += sum(plausible[i] for i in range(len(plausible)) if i not in matched)

    def share(count: int) -> float:
        return round(count / plates, 4) if plates else 0.0

    def per_image(count: int) -> float:
        return round(count / len(images), 3) if images else 0.0

    figures: dict[str, Any] = {
        "mode": "crops" if crops else "end-to-end",
        "images": len(images),
        "plates": plates,
        "unreadable_images": unreadable,
        "detection_recall": None if crops else share(detected),
        "exact_accuracy": share(exact),
        "exact_interval_95": share_interval(exact, plates),
        "folded_accuracy": share(folded),
        "folded_interval_95": share_interval(folded, plates),
        "one_edit_accuracy": share(one_edit),
        "raw_exact_accuracy": share(raw_exact),
        "readings_per_image": per_image(returned),
        "extra_readings_per_image": None if crops else per_image(extra),
        "extra_plausible_per_image": None if crops else per_image(extra_plausible),
        "median_seconds": round(statistics.median(seconds), 6) if seconds else 0.0,
        "p95_seconds": round(_percentile(seconds, 0.95), 6),
    }
    if losses:
        figures["losses"] = dict(stages)
        figures["losses_by_width"] = {name: dict(counts) for name, counts in by_width.items() if counts}
    return figures


def run(args: argparse.Namespace) -> int:
    """Evaluate and print the figures; 2 on unusable input or models."""
    from anpr.recognition import ModelError

    try:
        images = load_labels(args.dataset)
    except (OSError, ValueError) as exc:
        print(f"anpr eval: {exc}", file=sys.stderr)
        return 2
    if args.limit > 0:
        images = images[: args.limit]
    crops = args.crops or (bool(images) and all(whole_image(image) for image in images))
    try:
        pipeline = load_pipeline(args.models, args.threads)
        if not crops and pipeline.detector is None:
            raise ModelError("the model set has no detector; use --crops to score reading alone")
    except ModelError as exc:
        print(f"anpr eval: {exc}", file=sys.stderr)
        return 2
    try:
        earlier = read_outcomes(args.against) if args.against is not None else None
    except (OSError, ValueError) as exc:
        print(f"anpr eval: {exc}", file=sys.stderr)
        return 2
    outcomes: list[Outcome] = []
    figures: dict[str, Any] = {"dataset": str(args.dataset), "models": f"{pipeline.info.name} {pipeline.info.version}"}
    figures |= evaluate(
        pipeline,
        images,
        crops=crops,
        hints=args.hints,
        min_confidence=args.min_confidence,
        losses=args.losses,
        outcomes=outcomes,
    )
    if earlier is not None:
        figures["against"] = {"file": str(args.against), **compare(earlier, outcomes)}
    if args.outcomes is not None:
        try:
            write_outcomes(args.outcomes, outcomes)
        except OSError as exc:
            print(f"anpr eval: {exc}", file=sys.stderr)
            return 2
    if args.json:
        print(json.dumps(figures))
    else:
        width = max(len(key) for key in figures)
        for key, value in figures.items():
            shown = "n/a" if value is None else json.dumps(value) if isinstance(value, dict | list | tuple) else value
            print(f"{key.ljust(width)}  {shown}")
    return 0
