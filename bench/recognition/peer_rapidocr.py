"""The general-OCR peer on a labelled plate set: RapidOCR (PP-OCRv6 text detector and recogniser, angle classifier
off) scored like ``anpr eval``.

Run it with a Python that has ``rapidocr`` (3.10, which ships its models in the wheel) and onnxruntime, e.g. a
separate virtual environment; it imports nothing of the project, so the peer never shares a process with it::

    python -m venv /tmp/rapid && /tmp/rapid/bin/pip install "rapidocr==3.10.*" onnxruntime opencv-python-headless
    taskset -c 1 /tmp/rapid/bin/python bench/recognition/peer_rapidocr.py DATASET_DIR [--crops]

Scene sets: of the text lines whose centres lie in the labelled box (grown by a tenth), those at least 0.7 times as
tall as the tallest (the characters; captions and stickers are smaller) are joined left to right and compared with
the label (a plate is often read as one line, sometimes as its groups); ``readings_per_image`` counts
every line RapidOCR returns, ``extra_readings_per_image`` those outside the labelled box. Crop sets (``--crops``,
or every box the whole image): the recogniser alone on the whole image. One ONNX Runtime thread; seconds per image
include decoding. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import time
from pathlib import Path
from typing import Any

_KEEP = re.compile(r"[^A-Z0-9]")


def _normalise(text: str) -> str:
    return _KEEP.sub("", text.upper())


def _fold(text: str) -> str:
    return text.replace("O", "0").replace("I", "1")


def _inside(point: tuple[float, float], box: list[int], grow: float = 0.1) -> bool:
    x, y, w, h = box
    gx, gy = w * grow, h * grow
    return x - gx <= point[0] <= x + w + gx and y - gy <= point[1] <= y + h + gy


def main() -> None:
    """Score RapidOCR on one set and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--crops", action="store_true", help="read every labelled box whole (recogniser only)")
    args = parser.parse_args()

    import cv2
    from rapidocr import RapidOCR

    cv2.setNumThreads(1)
    engine = RapidOCR(
        params={
            "Global.use_cls": False,
            "Global.log_level": "error",
            "EngineConfig.onnxruntime.intra_op_num_threads": 1,
            "EngineConfig.onnxruntime.inter_op_num_threads": 1,
        }
    )
    records = [json.loads(line) for line in (args.dataset / "labels.jsonl").read_text().splitlines() if line.strip()]
    crops = args.crops or all(
        p["box"][:2] == [0, 0] and p["box"][2:] == r["size"] for r in records for p in r["plates"]
    )
    plates = exact = folded = lines = extra = 0
    seconds: list[float] = []
    for record in records:
        start = time.perf_counter()
        image = cv2.imread(str(args.dataset / record["image"]), cv2.IMREAD_COLOR)
        if crops:
            out = engine(image, use_det=False, use_cls=False, use_rec=True)
            texts = [_normalise(t) for t in (out.txts or ())]
            seconds.append(time.perf_counter() - start)
            read = "".join(texts)
            lines += len(texts)
            for plate in record["plates"]:
                plates += 1
                exact += read == plate["text"]
                folded += _fold(read) == _fold(plate["text"])
            continue
        out = engine(image, use_det=True, use_cls=False, use_rec=True)
        seconds.append(time.perf_counter() - start)
        found: list[tuple[float, float, tuple[float, float], str]] = []
        for quad, text in zip(out.boxes if out.boxes is not None else (), out.txts or (), strict=False):
            xs, ys = [p[0] for p in quad], [p[1] for p in quad]
            found.append((min(xs), max(ys) - min(ys), (sum(xs) / len(xs), sum(ys) / len(ys)), _normalise(text)))
        lines += len(found)
        for plate in record["plates"]:
            plates += 1
            mine = [(x, height, text) for x, height, centre, text in found if _inside(centre, plate["box"])]
            extra += len(found) - len(mine)
            # The characters are the plate's tallest text: captions, slogans and stickers are smaller.
            tallest = max((height for _, height, _ in mine), default=0.0)
            read = "".join(text for _, height, text in sorted(mine) if height >= 0.7 * tallest)
            exact += read == plate["text"]
            folded += _fold(read) == _fold(plate["text"])
    n = max(plates, 1)
    figures: dict[str, Any] = {
        "dataset": args.dataset.name,
        "peer": "rapidocr 3.10 (PP-OCRv6 small det + rec, cls off, 1 thread)",
        "mode": "crops" if crops else "end-to-end",
        "images": len(records),
        "exact_accuracy": round(exact / n, 4),
        "folded_accuracy": round(folded / n, 4),
        "readings_per_image": round(lines / max(len(records), 1), 3),
        "extra_readings_per_image": None if crops else round(extra / max(len(records), 1), 3),
        "median_seconds": round(statistics.median(seconds), 6) if seconds else 0.0,
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
