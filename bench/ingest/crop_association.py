"""Plate-crop cameras: how often the tracker joins two vehicles into one pass, or splits one vehicle in two.

Usage (from the repository root)::

    .venv/bin/python bench/ingest/crop_association.py [--pairs 20000] [--plates 300] [--json OUT]

A camera that sends plate crops gives the tracker no motion to go by, so a crop joins an open pass on its text
alone. Each case below is fed to the real ``PassTracker`` as two crops 0.4 s apart (well inside the pass
timeout), under the rule before 2026-12-07 (text similarity >= 0.5 only: ``crop_max_text_distance`` unbounded)
and the shipped rule (at most ``crop_max_text_distance`` characters apart, default 1):

- **two vehicles**: different plates of one series (both drawn from one South African format, as consecutive
  cars of one town are), and of the demo's mix of formats; the pass count should be 2;
- **one vehicle**: one rendered plate seen twice (two held-out synthetic views, each with its own pose, blur,
  noise and light) and read by the shipped reader in crop mode; the pass count should be 1.

The plates are synthetic (``anpr.synth``); the figures are deterministic for a seed.
"""

from __future__ import annotations

import argparse
import json
import platform
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from anpr.domain.plate_events import is_plate_text
from anpr.ingest.tracking.model import Box, FrameReads, PlateRead, Stage
from anpr.ingest.tracking.tracker import PassTracker, TrackerConfig
from anpr.recognition import RecognitionPipeline
from anpr.recognition.models import MODELS_DIR
from anpr.recognition.session import SessionOptions
from anpr.synth.crops import reader_sample
from anpr.synth.fonts import missing_fonts
from anpr.synth.formats import FORMATS, SA_FORMATS, PlateFormat, pick_format
from anpr.synth.plate import render_plate

SEED = 987_654 + 31  # held out: training draws from seeds 0 and 1
RULES = {"similarity_only": TrackerConfig(crop_max_text_distance=1_000), "shipped": TrackerConfig()}


def passes(first: str, second: str, config: TrackerConfig) -> int:
    """Final events of a crop camera sending ``first`` then ``second`` 0.4 s later."""
    tracker = PassTracker(config)
    events = []
    for index, (text, at) in enumerate(((first, 0.0), (second, 0.4))):
        read = PlateRead(text, 0.9, Box(0, 0, 200, 60))
        events += tracker.observe(FrameReads("gate", f"f{index}", 1_700_000_000 + at, (read,), plate_crops=True))
    events += tracker.flush()
    return sum(e.stage is Stage.FINAL for e in events)


def label(rng: np.random.Generator, fmt: PlateFormat) -> str:
    """A new plate text of ``fmt`` as the reader would give it (no spaces, dashes or row breaks)."""
    return fmt.label(fmt.generate(rng))


def two_vehicles(pairs: int, rng: np.random.Generator) -> dict[str, Any]:
    """Share of different-plate pairs joined into one pass, per way of drawing the pair, per rule."""

    def one_series() -> tuple[str, str]:
        fmt = pick_format(rng, SA_FORMATS)
        return label(rng, fmt), label(rng, fmt)

    def demo_mix() -> tuple[str, str]:
        first, second = (pick_format(rng, SA_FORMATS if rng.random() < 0.8 else FORMATS) for _ in range(2))
        return label(rng, first), label(rng, second)

    draws: dict[str, Callable[[], tuple[str, str]]] = {"one_south_african_series": one_series, "demo_mix": demo_mix}
    out: dict[str, Any] = {}
    for name, draw in draws.items():
        drawn = [draw() for _ in range(pairs)]
        # Texts an event may not carry (a one-character personalised plate) give no event of their own either way.
        different = [(a, b) for a, b in drawn if a != b and is_plate_text(a) and is_plate_text(b)]
        out[name] = {"pairs": len(different)} | {
            rule: {
                "joined": (joined := sum(passes(a, b, config) == 1 for a, b in different)),
                "share": round(joined / len(different), 5),
            }
            for rule, config in RULES.items()
        }
    return out


def one_vehicle(plates: int, rng: np.random.Generator, models: Path) -> dict[str, Any]:
    """Share of plates seen twice that the tracker splits into two passes, per rule."""
    pipeline = RecognitionPipeline.load(models, session_options=SessionOptions(intra_op_threads=1))
    pairs = []
    for _ in range(plates):
        plate = render_plate(rng, pick_format(rng, SA_FORMATS if rng.random() < 0.8 else FORMATS))
        views = [reader_sample(rng, size=None, plate=plate).image for _ in range(2)]
        first, second = pipeline.read_plates(views)
        pairs.append((plate.label, first.text, second.text, min(first.confidence, second.confidence)))
    readable = [(a, b, unsure) for _, a, b, unsure in pairs if a and b]
    report: dict[str, Any] = {
        "plates": plates,
        "both_views_read": len(readable),
        "both_views_right": sum(a == b == t for t, a, b, _ in pairs),
        "views_read_alike": sum(a == b for a, b, _ in readable),
        "models": f"{pipeline.manifest.name} {pipeline.manifest.version}",
    }
    for rule, config in RULES.items():
        split = [unsure for a, b, unsure in readable if passes(a, b, config) == 2]
        report[rule] = {
            "split": len(split),
            "share": round(len(split) / max(len(readable), 1), 4),
            # Splits where one of the two views was read at a confidence below 0.2 (crops have no floor).
            "split_with_a_view_below_0_2": sum(unsure < 0.2 for unsure in split),
        }
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=20_000, help="different-plate pairs per way of drawing them")
    parser.add_argument("--plates", type=int, default=300, help="plates seen twice and read by the shipped reader")
    parser.add_argument("--models", type=Path, default=MODELS_DIR)
    parser.add_argument("--json", default="", help="also write the figures here")
    args = parser.parse_args()
    rng = np.random.default_rng(SEED)
    report = {
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {platform.node()}",
        "missing_fonts": list(missing_fonts()),
        "two_vehicles": two_vehicles(args.pairs, rng),
        "one_vehicle": one_vehicle(args.plates, rng, args.models),
    }
    print(json.dumps(report, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
