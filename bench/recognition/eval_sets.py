"""Every labelled set of a data directory through ``anpr eval``'s scoring, one model set, one core, one JSON file.

A change that helps one set and hurts another is not progress, so every comparison reports every set::

    taskset -c 1 python bench/recognition/eval_sets.py DATA_DIR [--models DIR] [--hints ZA] --out results.json

``DATA_DIR`` holds sets in the ``labels.jsonl`` layout (``<set>/labels.jsonl``, ``<set>/images/``); scene sets are
read end to end, crop sets (every box the whole image) as plate crops, exactly as ``anpr eval`` decides.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
from pathlib import Path
from typing import Any

import cv2

from anpr.cli.evaluate import evaluate, load_labels, whole_image
from anpr.recognition import RecognitionPipeline, SessionOptions
from anpr.recognition.models import MODELS_DIR


def main() -> None:
    """Evaluate each set and write the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="directory of labelled sets")
    parser.add_argument("--models", type=Path, default=MODELS_DIR)
    parser.add_argument("--hints", default="", help="plate regions for correction, e.g. ZA-WC,ZA")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    pipeline = RecognitionPipeline.load(args.models, session_options=SessionOptions(intra_op_threads=1))
    hints = tuple(h.strip().upper() for h in args.hints.split(",") if h.strip())
    report: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.node()} {platform.machine()}, one core, one ONNX Runtime and OpenCV thread",
        "models": f"{pipeline.info.name} {pipeline.info.version}",
        "hints": list(hints),
        "sets": {},
    }
    for labels in sorted(args.data.glob("*/labels.jsonl")):
        images = load_labels(labels.parent)
        crops = bool(images) and all(whole_image(image) for image in images)
        report["sets"][labels.parent.name] = evaluate(pipeline, images, crops=crops, hints=hints)
        print(labels.parent.name, json.dumps(report["sets"][labels.parent.name]), flush=True)
    args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
