"""Fit the reading scorer (:mod:`anpr.recognition.scoring`) and choose the default operating point, on synthetic
scenes only.

``python -m anpr.training calibrate --models DIR`` reads two disjoint sets of held-out synthetic scenes through the
serving pipeline with nothing filtered: every reading it would return, and whether its text is exactly the text of
the labelled plate under it. A logistic regression (scikit-learn) fitted on the first set turns a reading's
features into the probability that it is right. On the second set the default floor is chosen for a hotlist
system: the highest floor that still reads ``--keep-right`` (99 %) of the plates read right with no floor at all,
unless fewer than ``--min-plate-precision`` (97 %) of the readings it reports lie on a plate: then the lowest floor
that reaches that share. (Without that guard, a reader whose right readings have a long tail of low scores pulls
the floor down until junk passes: the interpolated reader of 2026-12-07 would have got a floor of 0.09 at 93.9 % on
a plate; 97 % is what the previous operating point gave on the same synthetic scenes.)
A reading that is no plate (a badge, a sticker, a timestamp) becomes a junk event, a stored personal read and a
candidate false hit; a plate not reported is a stolen vehicle missed: junk goes, at most 1 % of the right readings
with it. (Chosen by precision instead, say 99 % of the readings exactly right, the floor would drop most real plates:
they are read less surely than synthetic ones.) The curve gives the floors for 99 % of readings on a plate and for
99 % exactly right, for a caller who asks for a stricter minimum. Then the detector and refiner floors: boxes either
scores below its floor are not read at all, and each keeps ``--keep`` (99.9 %) of the boxes that gave right
readings reported at the default floor on both sets, with ``--floor-confidence`` (90 %) (every box costs a read, so
weak boxes are most of the time spent per frame; see :func:`floor_keeping`). The scorer and the three floors are
written into the manifest; the curve goes to ``--curve-json`` and, drawn beside the reader's raw confidence, to
``--curve-png``.

The scenes mix what cameras see: 1080p street scenes with plates of 40-400 px, 720p video frames, close-ups of
400-900 px, frames without plates, JPEG quality 60-95. No real photo is used.
"""

from __future__ import annotations

import argparse
import datetime
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from anpr.cli.binomial import pmf
from anpr.cli.evaluate import IOU_THRESHOLD
from anpr.recognition import PipelineConfig, PlateResult, RecognitionPipeline, load_manifest
from anpr.recognition.models import MODELS_DIR
from anpr.recognition.scoring import FEATURES, PlateScorer, features
from anpr.synth.fonts import missing_fonts
from anpr.synth.scene import render_scene
from anpr.training.evaluate import ONE_CORE, EncodedScene, _jpeg, corner_box

CALIBRATION_SEED = 555_001  # disjoint from training (0, 1) and from evaluate's held-out seeds (987_654 + k)
VALIDATION_SEED = 555_002
_NOTHING_FILTERED = 1e-12


@dataclass(frozen=True)
class Reading:
    """One reading of a calibration scene: its features, the reader's own confidence, and whether it is right."""

    values: tuple[float, ...]
    raw_confidence: float
    correct: bool
    scene: int
    plate: int | None  # the labelled plate it is the right reading of, when it is one
    on_plate: bool = True  # its box is on a labelled plate (right or not): not junk


def calibration_scenes(seed: int, n: int) -> list[EncodedScene]:
    """``n`` synthetic frames as cameras see them (see the module docstring), drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        kind = i % 6
        if kind < 3:  # street scenes at 1080p
            scene = render_scene(rng, 1920, 1080, max_plates=3, min_width_1080p=40.0, max_width_1080p=400.0)
        elif kind < 5:  # video frames at 720p
            scene = render_scene(rng, 1280, 720, max_plates=2, min_width_1080p=60.0, max_width_1080p=400.0)
        else:  # close-ups
            scene = render_scene(rng, 1920, 1080, max_plates=2, min_width_1080p=400.0, max_width_1080p=900.0)
        quality = int(rng.integers(60, 96))
        out.append(EncodedScene(_jpeg(scene.image, quality), scene.boxes, scene.labels, scene.occluded))
    return out


def unfiltered(models: Path) -> RecognitionPipeline:
    """The model set at ``models`` without its scorer and without any floor: every reading it would make."""
    manifest = replace(load_manifest(models), scoring=None)
    config = PipelineConfig(min_reading_confidence=_NOTHING_FILTERED)
    return RecognitionPipeline(manifest, session_options=ONE_CORE, config=config)


def readings(pipeline: RecognitionPipeline, scenes: Sequence[EncodedScene]) -> list[Reading]:
    """Every non-empty reading of ``scenes``, labelled right or wrong."""
    out = []
    for s, scene in enumerate(scenes):
        result = pipeline.recognize([scene.jpeg])[0]
        truth = [corner_box(*b) for b in scene.boxes]
        for plate in result.plates:
            if not plate.reading.text:
                continue
            match = _right_plate(plate, truth, scene.labels)
            values = features(plate)
            on_plate = any(plate.box.iou(box) >= IOU_THRESHOLD for box in truth)
            out.append(
                Reading(
                    tuple(values[f] for f in FEATURES), plate.reading.confidence, match is not None, s, match, on_plate
                )
            )
    return out


def _right_plate(plate: PlateResult, truth: Sequence[Any], labels: Sequence[str]) -> int | None:
    for index, (box, label) in enumerate(zip(truth, labels, strict=True)):
        if plate.box.iou(box) >= IOU_THRESHOLD and plate.reading.text == label:
            return index
    return None


def fit(rows: Sequence[Reading], version: str) -> PlateScorer:
    """A logistic regression of right against wrong readings (L2, C = 1)."""
    from sklearn.linear_model import LogisticRegression

    x = np.array([r.values for r in rows], dtype=np.float64)
    y = np.array([r.correct for r in rows], dtype=np.int64)
    if len(set(y.tolist())) < 2:
        # Too few scenes (a smoke run) to see both right and wrong readings: a constant, uninformed scorer.
        share = (float(y.mean()) if len(y) else 0.5) * 0.98 + 0.01
        return PlateScorer(version, float(np.log(share / (1 - share))), dict.fromkeys(FEATURES, 0.0))
    model = LogisticRegression(C=1.0, max_iter=5000)
    model.fit(x, y)
    weights = dict(zip(FEATURES, (float(w) for w in model.coef_[0]), strict=True))
    return PlateScorer(version, float(model.intercept_[0]), weights)


def curve(
    rows: Sequence[Reading], scenes: Sequence[EncodedScene], score: Callable[[Reading], float]
) -> list[dict[str, float]]:
    """Precision (reported readings that are right) and recall (legible plates read right) at every floor.

    A plate counts once however many of its boxes read it right (consolidation keeps one of them).
    """
    legible = sum(not hidden for scene in scenes for hidden in scene.occluded)
    scored = sorted(((score(r), r) for r in rows), key=lambda pair: -pair[0])
    points = []
    right_plates: set[tuple[int, int]] = set()
    reported = right = on_plates = 0
    for i, (value, row) in enumerate(scored):
        reported += 1
        right += row.correct
        on_plates += row.on_plate
        if row.plate is not None and not scenes[row.scene].occluded[row.plate]:
            right_plates.add((row.scene, row.plate))
        if i + 1 < len(scored) and scored[i + 1][0] == value:
            continue  # one point per distinct floor
        points.append(
            {
                "floor": float(value),
                "precision": right / reported,
                "plate_precision": on_plates / reported,
                "recall": len(right_plates) / max(legible, 1),
                "readings": reported,
            }
        )
    return points


def operating_point(
    points: Sequence[dict[str, float]], precision: float, key: str = "plate_precision"
) -> dict[str, float]:
    """The lowest floor at which at least ``precision`` of the readings reported are of a plate (``key``
    ``"precision"``: exactly right), i.e. the most recall at that precision; the most precise point when no floor
    reaches it."""
    good = [p for p in points if p[key] >= precision]
    if not good:
        return max(points, key=lambda p: p[key])
    return max(good, key=lambda p: p["recall"])


def recall_preserving_point(points: Sequence[dict[str, float]], keep: float) -> dict[str, float]:
    """The highest floor that still reads ``keep`` of the plates read right with no floor at all: junk goes, and
    at most ``1 - keep`` of the right readings go with it."""
    if not points:
        return {"floor": 0.0, "precision": 0.0, "plate_precision": 0.0, "recall": 0.0, "readings": 0}
    target = keep * max(p["recall"] for p in points)
    return next(p for p in points if p["recall"] >= target)  # points run from the highest floor down


def hotlist_point(points: Sequence[dict[str, float]], keep: float, min_plate_precision: float) -> dict[str, float]:
    """The default operating point: :func:`recall_preserving_point`, raised to the lowest floor at which
    ``min_plate_precision`` of the readings reported lie on a plate when it falls short of that."""
    chosen = recall_preserving_point(points, keep)
    if chosen["plate_precision"] >= min_plate_precision:
        return chosen
    return operating_point(points, min_plate_precision)


def floor_keeping(right: Sequence[Reading], feature: str, keep: float, confidence: float = 0.9) -> float:
    """A score (the logistic of a ``*_logit`` ``feature``) below which, with ``confidence``, at most ``1 - keep`` of
    right readings' boxes lie.

    The ``1 - keep`` quantile of the right readings' scores is estimated conservatively, without assuming their
    distribution: the k-th lowest of the n scores lies at or below that quantile with probability
    P(Binomial(n, 1 - keep) >= k), so the floor is the highest order statistic for which that is at least
    ``confidence``, and the lowest score when n is too small for even that one. (A plain empirical quantile at
    keep = 0.999 is the second-lowest of about 1,500 right readings: two fits of the same recipe on different
    synthetic scenes put it 0.02 apart, and a floor set too high loses plates for good, while one set too low only
    costs reading time.)
    """
    scores = sorted(1.0 / (1.0 + np.exp(-r.values[FEATURES.index(feature)])) for r in right)
    if not scores:
        return 0.0
    return float(scores[floor_rank(len(scores), keep, confidence) - 1])


def floor_rank(n: int, keep: float, confidence: float) -> int:
    """Which of n right readings' scores, counted from the lowest (1-based), is the floor of :func:`floor_keeping`."""
    return max(order_statistic(n, 1.0 - keep, confidence), 1)


def order_statistic(n: int, share: float, confidence: float) -> int:
    """The largest k (1-based) for which the k-th lowest of n samples lies at or below their ``share`` quantile with
    probability at least ``confidence``: P(Binomial(n, share) >= k) >= confidence; 0 when no k qualifies."""
    if share <= 0.0:
        return 0
    if share >= 1.0:
        return n
    below = 0.0  # P(Binomial(n, share) < k), summed term by term
    for k in range(1, n + 1):
        below += pmf(k - 1, n, share)
        if 1.0 - below < confidence:
            return k - 1
    return n


def draw(
    curves: dict[str, tuple[list[dict[str, float]], str]], chosen: dict[str, float], target: float, path: Path
) -> None:
    """Precision/recall curves (name -> points and the precision key to draw), and the chosen operating point, as a
    PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=110)
    for name, (points, key) in curves.items():
        ax.plot([p["recall"] for p in points], [p[key] for p in points], label=name)
    for key in ("plate_precision", "precision"):
        ax.scatter([chosen["recall"]], [chosen[key]], color="black", zorder=3)
    ax.annotate(
        f"default floor {chosen['floor']:.2f}: recall {chosen['recall']:.3f},\n"
        f"on a plate {chosen['plate_precision']:.3f}, exactly right {chosen['precision']:.3f}",
        (chosen["recall"], chosen["precision"]),
        textcoords="offset points",
        xytext=(-230, -60),
        arrowprops={"arrowstyle": "->"},
    )
    ax.axhline(target, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("recall: legible plates read exactly")
    ax.set_ylabel("precision: share of the readings reported")
    ax.set_xlim(0.4, 1.0)
    ax.set_ylim(0.4, 1.005)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left")
    ax.set_title("Readings of held-out synthetic scenes, by confidence floor")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def run(args: argparse.Namespace) -> None:
    """Fit, choose the floor, write the manifest entry and the curve."""
    models = Path(args.models)
    pipeline = unfiltered(models)
    # The scorer belongs to the models it was fitted on: by default it takes the reader's version.
    version = args.version or load_manifest(models).reader.version or datetime.date.today().isoformat()
    train = readings(pipeline, calibration_scenes(CALIBRATION_SEED, args.scenes))
    scorer = fit(train, version)
    valid_scenes = calibration_scenes(VALIDATION_SEED, args.scenes)
    valid = readings(pipeline, valid_scenes)

    def calibrated(row: Reading) -> float:
        return scorer.probability(dict(zip(FEATURES, row.values, strict=True)))

    points = curve(valid, valid_scenes, calibrated)
    chosen = hotlist_point(points, args.keep_right, args.min_plate_precision)
    # Both sets' right readings at the operating point: twice the readings for a quantile in the far tail.
    reported_right = [r for r in (*train, *valid) if r.correct and calibrated(r) >= chosen["floor"]]
    scorer = replace(
        scorer,
        min_confidence=chosen["floor"],
        min_detection_confidence=floor_keeping(reported_right, "detection_logit", args.keep, args.floor_confidence),
        min_refined_confidence=floor_keeping(reported_right, "refined_logit", args.keep, args.floor_confidence),
    )
    manifest_path = models / "manifest.yaml" if models.is_dir() else models
    manifest = yaml.safe_load(manifest_path.read_text())
    manifest["scoring"] = scorer.as_manifest()
    manifest_path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    raw_points = curve(valid, valid_scenes, lambda row: row.raw_confidence)
    report = {
        "scenes": args.scenes,
        "missing_fonts": list(missing_fonts()),
        "readings": {"calibration": len(train), "validation": len(valid)},
        "right_share": {"calibration": sum(r.correct for r in train) / max(len(train), 1)},
        "box_floors": {
            "right_readings": len(reported_right),
            "keep": args.keep,
            "confidence": args.floor_confidence,
            "order_statistic": floor_rank(len(reported_right), args.keep, args.floor_confidence),
        },
        "scorer": scorer.as_manifest(),
        "operating_point": chosen,
        "raw_confidence_keeping_as_many": recall_preserving_point(raw_points, args.keep_right),
        "plate_precision_99": operating_point(points, 0.99),
        "raw_confidence_plate_precision_99": operating_point(raw_points, 0.99),
        "exact_precision_99": operating_point(points, 0.99, key="precision"),
        "curve": points[:: max(1, len(points) // 400)],
    }
    if args.curve_json:
        Path(args.curve_json).write_text(json.dumps(report, indent=1))
    if args.curve_png:
        curves = {
            "calibrated: on a plate (not junk)": (points, "plate_precision"),
            "calibrated: the plate's exact text": (points, "precision"),
            "reader's raw confidence: exact text": (raw_points, "precision"),
        }
        draw(curves, chosen, 0.99, Path(args.curve_png))
    print(json.dumps({k: v for k, v in report.items() if k != "curve"}, indent=1))


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Command-line options of ``python -m anpr.training calibrate``."""
    p.add_argument("--models", default=str(MODELS_DIR), help="model directory whose manifest gets the scorer")
    p.add_argument("--scenes", type=int, default=1500, help="synthetic scenes in each of the two sets")
    p.add_argument(
        "--keep-right",
        type=float,
        default=0.99,
        help="share of the right readings (with no floor) that the default floor must keep",
    )
    p.add_argument(
        "--min-plate-precision",
        type=float,
        default=0.97,
        help="share of the readings reported at the default floor that must lie on a plate (raises the floor)",
    )
    p.add_argument("--version", default="", help="the scorer's version in the manifest (default: the reader's)")
    p.add_argument(
        "--keep",
        type=float,
        default=0.999,
        help="share of the right readings reported at the operating point whose boxes the detector and refiner "
        "floors keep",
    )
    p.add_argument(
        "--floor-confidence",
        type=float,
        default=0.9,
        help="how sure the detector and refiner floors must be to keep --keep of the right readings' boxes",
    )
    p.add_argument("--curve-json", default="", help="write the precision/recall curve here")
    p.add_argument("--curve-png", default="", help="draw the precision/recall curve here")
