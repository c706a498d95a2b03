"""Plates cut by the frame's edge: what the pipeline reports for them, with and without counting the part beyond
the edge as hidden characters (``PipelineConfig.partial_at_frame_edge``), in one process on ONE core.

Usage (from the repository root)::

    taskset -c 1 .venv/bin/python bench/recognition/bench_frame_edge.py [--plates 150] [--json OUT]

Each held-out synthetic 1280 x 720 scene holds one legible plate 80-400 px wide (at 1080p scale). The frame is cut
so that a share of the plate's width lies beyond its left or right edge (0: the plate ends 4 px inside), as a
dash-cam or a fixed camera sees a car entering or leaving. For each cut, the readings reported at the default
operating point over the plate are counted as the whole plate, part of it (a shorter text found in the label:
the danger, since it can be another vehicle's plate) or something else, and how many of each were marked partial
(``hidden_characters`` >= 1, which ingest and hotlist treat as part of a plate).

Then the same frames as passes through ingest's real tracker (``PassTracker``, frames 0.1 s apart, an early event
after three agreeing reads): a car **entering** (its plate 50, 35, 20, 10 and 5 % beyond the left edge, then
three frames 4 px inside) and a car **parked** with 35 % of its plate beyond the edge for six frames. Each pass's
early and final events are counted as the plate, part of it, another text, or marked partial. The figures are
deterministic.

Last, what the hotlist makes of those events: each event of the shipped pipeline (frame-edge marking on) is
matched as ``ReportReads`` would match it against one lenient list holding every pass's plate among 100,000 seeded
South African plates (``testkit.seeded_plates``), with the hotlist's gap matching of partial reads off and on
(``anpr.hotlist.gaps``): how many passes alert on their own plate's entry, and how many alerts go to other entries.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from anpr.cli.evaluate import IOU_THRESHOLD
from anpr.hotlist.gaps import GapRules
from anpr.hotlist.matching import IndexedEntry, ListInfo, MatchIndex, MatchRules, Reading, Strictness
from anpr.hotlist.plates import Folding
from anpr.hotlist.settings import DEFAULT_CONFUSION_CLASSES
from anpr.ingest.tracking.model import Box as TrackBox
from anpr.ingest.tracking.model import FrameReads, PassEvent, PlateRead, Stage
from anpr.ingest.tracking.tracker import PassTracker, TrackerConfig
from anpr.recognition import PipelineConfig, RecognitionOptions, RecognitionPipeline
from anpr.recognition.models import MODELS_DIR
from anpr.recognition.types import Box
from anpr.synth.fonts import missing_fonts
from anpr.synth.scene import render_scene
from anpr.training.evaluate import HELD_OUT_SEED, load

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))  # the seeded list lives with the tests' helpers
from testkit.seeded_plates import plates as seeded_plates

CUTS = (0.0, 0.05, 0.1, 0.2, 0.35, 0.5)
SIDES = ("left", "right")
GAP = 4  # pixels between plate and edge for the uncut frames
INSIDE = (4, 20, 60)  # pixels inside the left edge for the frames of a plate seen whole


@dataclass(frozen=True)
class CutPlate:
    """One held-out plate: its label, its frames cut at each share and side (cut, side, JPEG, the plate's visible
    box), and frames with the whole plate the given number of pixels inside the left edge."""

    label: str
    cuts: list[tuple[float, str, bytes, Box]]
    inside: dict[int, bytes]


def _jpeg(image: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".jpg", np.ascontiguousarray(image), [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return encoded.tobytes()


def frames(plates: int) -> list[CutPlate]:
    """``plates`` held-out plates, each cut at every share and side, and seen whole near the left edge."""
    rng = np.random.default_rng(HELD_OUT_SEED + 11)
    out: list[CutPlate] = []
    while len(out) < plates:
        scene = render_scene(rng, 1280, 720, max_plates=1, min_width_1080p=80.0, max_width_1080p=400.0)
        if len(scene.labels) != 1 or scene.occluded[0]:
            continue
        x1, y1, x2, y2 = (float(v) for v in scene.boxes[0])
        width = x2 - x1
        cuts = []
        for cut in CUTS:
            for side in SIDES:
                if side == "left":
                    left = int(x1 + cut * width) if cut else int(max(0.0, x1 - GAP))
                    image, visible = scene.image[:, left:], Box(max(x1 - left, 0.0), y1, x2 - max(x1, left), y2 - y1)
                else:
                    right = int(x2 - cut * width) if cut else int(min(scene.image.shape[1], x2 + GAP))
                    image, visible = scene.image[:, :right], Box(x1, y1, min(x2, right) - x1, y2 - y1)
                cuts.append((cut, side, _jpeg(image), visible))
        # Further into the view (as far as the scene allows: a plate near the scene's own edge stays closer).
        inside = {gap: _jpeg(scene.image[:, int(max(0.0, x1 - gap)) :]) for gap in INSIDE}
        out.append(CutPlate(scene.labels[0], cuts, inside))
    return out


def classify(text: str, label: str) -> str:
    """``whole``, ``part`` (a shorter text found in the label) or ``other``."""
    if text == label:
        return "whole"
    return "part" if text and text in label else "other"


def run(pipeline: RecognitionPipeline, plates: list[CutPlate]) -> dict[str, Any]:
    """Counts per cut (both sides together) of the readings reported over the plate, and of plates with none."""
    tallies: dict[float, Counter[str]] = {cut: Counter() for cut in CUTS}
    options = RecognitionOptions()
    for cut_plate in plates:
        for cut, _side, data, visible in cut_plate.cuts:
            (result,) = pipeline.recognize([data], options)
            over = [p for p in result.plates if p.box.iou(visible) >= IOU_THRESHOLD and p.reading.text]
            tally = tallies[cut]
            tally["frames"] += 1
            if not over:
                tally["none"] += 1
            for found in over:
                kind = classify(found.reading.text, cut_plate.label)
                tally[kind] += 1
                if found.reading.hidden_characters:
                    tally[f"{kind}_marked_partial"] += 1
    return {str(cut): dict(sorted(t.items())) for cut, t in tallies.items()}


# A pass is a sequence of frames: ("cut", share beyond the left edge) or ("inside", pixels inside it).
ENTERING = (("cut", 0.5), ("cut", 0.35), ("cut", 0.2), ("cut", 0.1), ("cut", 0.05), *(("inside", g) for g in INSIDE))
PARKED = (("cut", 0.35),) * 6


def _reads(pipeline: RecognitionPipeline, data: bytes) -> tuple[PlateRead, ...]:
    """One frame's reported readings as ingest's tracker gets them."""
    (result,) = pipeline.recognize([data], RecognitionOptions())
    return tuple(
        PlateRead(
            p.reading.text,
            p.reading.confidence,
            TrackBox(p.box.x, p.box.y, p.box.width, p.box.height),
            p.reading.character_confidences,
            hidden_characters=p.reading.hidden_characters,
        )
        for p in result.plates
    )


Events = dict[str, list[tuple[str, list[PassEvent]]]]  # scenario -> (plate label, the pass's events) per pass


def passes(pipeline: RecognitionPipeline, plates: list[CutPlate], kept: Events | None = None) -> dict[str, Any]:
    """Early and final events of each plate's entering and parked passes, counted by what their text is (and kept
    per scenario in ``kept``, when given)."""
    out: dict[str, Any] = {}
    for scenario, steps in (("entering", ENTERING), ("parked", PARKED)):
        tally: Counter[str] = Counter()
        for plate in plates:
            cut_left = {cut: data for cut, side, data, _ in plate.cuts if side == "left"}
            tracker = PassTracker(TrackerConfig(early_min_reads=3))
            events: list[PassEvent] = []
            for index, (kind, amount) in enumerate(steps):
                data = cut_left[float(amount)] if kind == "cut" else plate.inside[int(amount)]
                at = 1_700_000_000 + 0.1 * index
                events += tracker.observe(FrameReads("cam", f"{plate.label}-{index}", at, _reads(pipeline, data)))
            events += tracker.flush()
            if kept is not None:
                kept.setdefault(scenario, []).append((plate.label, events))
            tally["passes"] += 1
            for stage in (Stage.EARLY, Stage.FINAL):
                staged = [e for e in events if e.stage is stage]
                if not staged:
                    tally[f"{stage.name.lower()}_none"] += 1
                for event in staged:
                    mark = "_marked_partial" if event.hidden_characters else ""
                    tally[f"{stage.name.lower()}_{classify(event.text, plate.label)}{mark}"] += 1
        out[scenario] = dict(sorted(tally.items()))
    return out


def hotlist_alerts(kept: Events, seeded: int = 100_000) -> dict[str, Any]:
    """Per scenario and hotlist rule set: passes whose events alert on their own plate's entry, and alerts on
    other entries, on one lenient list of every pass's plate among ``seeded`` seeded plates."""
    labels = sorted({label for runs in kept.values() for label, _ in runs})
    taken = set(labels)
    targets = labels + [p for p in seeded_plates(seeded, 17) if p not in taken]
    out: dict[str, Any] = {"seeded_plates": seeded}
    for name, gaps in (("gaps_off", GapRules(min_visible=0)), ("gaps_on", GapRules())):
        index = MatchIndex(MatchRules(Folding(DEFAULT_CONFUSION_CLASSES), gaps=gaps))
        info = ListInfo(1, "watch", 50, True, Strictness.LENIENT, 0.0)
        index.load_list(info, (IndexedEntry(i, 1, t, False) for i, t in enumerate(targets)))
        own = {label: i for i, label in enumerate(labels)}
        for scenario, runs in kept.items():
            tally: Counter[str] = Counter()
            for label, events in runs:
                alerted: set[int] = set()
                for event in events:
                    readings = [Reading(event.text, event.confidence)]
                    readings += [Reading(text, confidence) for text, confidence in event.alternatives]
                    hits = index.match(readings, hidden_runs=event.hidden_characters)
                    alerted.update(h.entry_id for h in hits)
                tally["passes"] += 1
                tally["own_plate_alerted"] += own[label] in alerted
                tally["alerts_on_other_entries"] += len(alerted - {own[label]})
            out.setdefault(name, {})[scenario] = dict(sorted(tally.items()))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=MODELS_DIR)
    parser.add_argument("--plates", type=int, default=150)
    parser.add_argument("--json", default="", help="also write the figures here")
    args = parser.parse_args()
    plates = frames(args.plates)
    report: dict[str, Any] = {
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {platform.node()}",
        "plates": args.plates,
        "missing_fonts": list(missing_fonts()),  # the recipe's plate fonts not installed (figures not comparable)
        "cuts": "share of the plate's width beyond the frame edge (left and right each once per plate)",
    }
    kept: Events = {}
    for name, marked in (("unmarked", False), ("partial_at_frame_edge", True)):
        pipeline = load(args.models, PipelineConfig(partial_at_frame_edge=marked))
        report["models"] = f"{pipeline.manifest.name} {pipeline.manifest.version}"
        report[name] = run(pipeline, plates)
        report[f"{name}_passes"] = passes(pipeline, plates, kept if marked else None)
    report["hotlist_alerts"] = hotlist_alerts(kept)
    print(json.dumps(report, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
