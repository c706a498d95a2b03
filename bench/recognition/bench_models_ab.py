"""Alternated A/B timing of two whole model sets on synthetic 1080p frames, in one process on ONE CPU core.

Usage (from the repository root)::

    git worktree add /tmp/before 858bd94   # or any directory holding a manifest.yaml and its models
    taskset -c 1 .venv/bin/python bench/recognition/bench_models_ab.py \\
        /tmp/before/src/anpr/recognition/models src/anpr/recognition/models \\
        [--frames 20] [--rounds 2] [--json OUT.json]

Each round times decode + detect + read of the same seeded synthetic 1920 x 1080 JPEGs (1-3 plates of 80-400 px;
``anpr.training.evaluate.speed_1080p``) for A, then B, so a slow phase of a shared machine hits both alike; it also
times each reader and the fast-plate-ocr peer (when ``../shared/peers`` has it) on plate crops. On a machine
whose speed drifts from day to day, compare the two sets by their ratio in one run, not with older figures.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from anpr.training.evaluate import load, load_peer, speed_1080p


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", type=Path, help="model set A (directory with manifest.yaml)")
    parser.add_argument("b", type=Path, help="model set B")
    parser.add_argument("--frames", type=int, default=20, help="distinct frames per round (each timed 3 times)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", default="", help="also write every round's figures here")
    args = parser.parse_args()
    sets = {"a": load(args.a), "b": load(args.b)}
    peer = load_peer()
    rounds: dict[str, list[dict[str, Any]]] = {"a": [], "b": []}
    for _ in range(args.rounds):
        for key, pipeline in sets.items():
            figures = speed_1080p(pipeline, args.frames, peer)
            rounds[key].append(figures)
            stages = {stage: round(ms, 2) for stage, ms in figures["ms_median_by_stage"].items()}
            print(
                f"{key} ({pipeline.info.name} {pipeline.info.version}): {figures['ms_median']:.2f} ms per frame, "
                f"{stages}, reader {figures.get('reader_plates_per_second', 0):.0f} plates/s, "
                f"peer {figures.get('peer_plates_per_second', 0):.0f} plates/s",
                flush=True,
            )
    ratios = [b["ms_median"] / a["ms_median"] for a, b in zip(rounds["a"], rounds["b"], strict=True)]
    print("B / A per frame, by round:", ", ".join(f"{r:.3f}" for r in ratios))
    if args.json:
        Path(args.json).write_text(json.dumps({"a": str(args.a), "b": str(args.b), "rounds": rounds}, indent=1))


if __name__ == "__main__":
    main()
