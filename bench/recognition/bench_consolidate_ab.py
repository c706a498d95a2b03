"""One result per plate, on and off: accuracy, plates returned and time, alternated in one process on ONE core.

Usage (from the repository root)::

    taskset -c 1 .venv/bin/python bench/recognition/bench_consolidate_ab.py [--scenes 200] [--rounds 2] [--json OUT]

``PipelineConfig.consolidate`` reads the union box of detector fragments of a plate as well and drops boxes that
read part of a plate another box reads whole (``anpr.recognition.consolidate``). Each round runs, with it
off and then on, the ``anpr eval`` figures on openalpr-br (``../shared/data``, when present), the held-out
synthetic 1080p scenes end to end and held-out synthetic close-ups (plates 400-900 px wide at 1080p, where the
detector splits plates; ``anpr.training.evaluate``), and counts the boxes read and plates returned per
image; accuracy is deterministic, times are compared by their ratio within the run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from anpr.cli.evaluate import evaluate, load_labels
from anpr.recognition import PipelineConfig, RecognitionOptions, RecognitionPipeline
from anpr.recognition.models import MODELS_DIR
from anpr.training.evaluate import DATA, end_to_end_scenes, load, synthetic_end_to_end


def _counts(pipeline: RecognitionPipeline, images: list[bytes]) -> dict[str, float]:
    """Boxes read and plates returned per image, and the median seconds per image."""
    read = returned = 0
    seconds = []
    options = RecognitionOptions()
    for data in images:
        start = time.perf_counter()
        decoded = pipeline.decode(data)
        detections = pipeline.select(pipeline.detect([decoded])[0], options)
        raws = pipeline.read([pipeline.crop(decoded, d) for d in detections])
        kept = pipeline.plates(detections, raws, options, image=decoded)
        seconds.append(time.perf_counter() - start)
        read += len(detections)
        returned += len(kept)
    n = max(len(images), 1)
    return {
        "boxes_read_per_image": read / n,
        "plates_per_image": returned / n,
        "ms_median": 1000 * statistics.median(seconds) if seconds else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=MODELS_DIR)
    parser.add_argument("--scenes", type=int, default=200, help="held-out synthetic 1080p scenes")
    parser.add_argument("--close-ups", type=int, default=100, help="held-out synthetic close-ups (plates 400-900 px)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", default="", help="also write every round's figures here")
    args = parser.parse_args()
    pipelines = {
        "off": load(args.models, PipelineConfig(consolidate=False)),
        "on": load(args.models, PipelineConfig(consolidate=True)),
    }
    br = load_labels(DATA / "openalpr-br") if (DATA / "openalpr-br").is_dir() else []
    br_bytes = [image.path.read_bytes() for image in br]
    scenes = end_to_end_scenes(args.scenes)
    scene_bytes = [s.jpeg for s in scenes]
    close_ups = end_to_end_scenes(args.close_ups, close_ups=True)
    close_up_bytes = [s.jpeg for s in close_ups]
    rounds: dict[str, list[dict[str, Any]]] = {"off": [], "on": []}
    for _ in range(args.rounds):
        for key, pipeline in pipelines.items():
            figures: dict[str, Any] = {"synthetic_end_to_end": synthetic_end_to_end(pipeline, scenes)}
            figures["synthetic_counts"] = _counts(pipeline, scene_bytes)
            figures["synthetic_close_ups"] = synthetic_end_to_end(pipeline, close_ups)
            figures["synthetic_close_up_counts"] = _counts(pipeline, close_up_bytes)
            if br:
                figures["openalpr-br"] = evaluate(pipeline, br, crops=False)
                figures["openalpr-br_counts"] = _counts(pipeline, br_bytes)
            rounds[key].append(figures)
            print(key, json.dumps(figures), flush=True)
    for name in ("synthetic_counts", "synthetic_close_up_counts", "openalpr-br_counts"):
        if name in rounds["on"][0] and rounds["off"][0][name]["ms_median"] > 0:
            ratios = [
                b[name]["ms_median"] / a[name]["ms_median"] for a, b in zip(rounds["off"], rounds["on"], strict=True)
            ]
            print(f"{name}: on / off per image, by round:", ", ".join(f"{r:.3f}" for r in ratios))
    if args.json:
        Path(args.json).write_text(json.dumps({"models": str(args.models), "rounds": rounds}, indent=1))


if __name__ == "__main__":
    main()
