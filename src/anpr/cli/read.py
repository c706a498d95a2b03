"""``anpr read``: recognise the plates in image files.

With ``--json``, one line per image, in the order given (other tools parse this exact shape)::

    {"image": "<path as given>", "plates": [{"text": "CA123456", "confidence": 0.97, "box": [x, y, w, h]}],
     "seconds": 0.021}

``text`` is upper case without spaces or dashes; ``seconds`` is the recognition time of that image (decode,
detection and reading). ``--crops`` reads every image whole, as a plate (no detection); without it, an image that
looks like a plate crop gets a note on standard error (the line format stays the same). An image that cannot be
read gets ``"plates": []`` and an ``"error"`` message, and the command exits with status 1 after the other images.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from anpr.recognition import PlateResult


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """``--models`` and ``--threads``, shared by ``read`` and ``eval``."""
    parser.add_argument(
        "--models",
        type=Path,
        default=None,
        metavar="DIR",
        help="model directory or manifest.yaml (default: the models shipped with anpr)",
    )
    parser.add_argument(
        "--hints",
        type=lambda text: tuple(part.strip().upper() for part in text.split(",") if part.strip()),
        default=(),
        metavar="CODES",
        help="preferred plate formats for correction: countries or regions, e.g. ZA or ZA-WC,ZA-GP",
    )
    parser.add_argument(
        "--min-confidence",
        type=_unit_interval,
        default=None,
        metavar="P",
        help="report readings down to this calibrated confidence (default: the model set's operating point); "
        "e.g. 0.01 for unsure candidates as well",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        metavar="N",
        help="threads for ONNX Runtime and OpenCV (default 0: the CPUs this process may use, after affinity and "
        "container CPU limits)",
    )


def _unit_interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text!r}") from None
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``anpr read``."""
    parser.add_argument("--json", action="store_true", help="print one JSON object per image")
    parser.add_argument(
        "--crops",
        action="store_true",
        help="every image is already a plate (as fixed ANPR cameras send them): read it whole, without detection",
    )
    add_model_arguments(parser)
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files (JPEG, PNG, WebP, BMP)")


def looks_like_a_crop(width: int, height: int) -> bool:
    """An image small and plate-shaped enough to be a plate crop rather than a scene (no camera frame is 640 x 320
    or smaller with a plate's aspect ratio)."""
    return height > 0 and width <= 640 and height <= 320 and 1.2 <= width / height <= 6.0


def load_pipeline(models: Path | None, threads: int) -> Any:
    """Build the recognition pipeline; imported lazily so ``anpr --help`` stays fast without ONNX Runtime."""
    import cv2

    from anpr.recognition import RecognitionPipeline, SessionOptions
    from anpr.recognition.models import MODELS_DIR
    from anpr.runtime.cpus import usable_cpus

    if threads < 0:
        raise SystemExit("anpr: --threads must be 0 or more")
    cv2.setNumThreads(threads or usable_cpus())
    return RecognitionPipeline.load(
        models if models is not None else MODELS_DIR, session_options=SessionOptions(intra_op_threads=threads)
    )


def run(args: argparse.Namespace) -> int:
    """Read every image; 0 when all could be processed, 1 otherwise."""
    from anpr.recognition import ModelError, RecognitionOptions

    try:
        pipeline = load_pipeline(args.models, args.threads)
    except ModelError as exc:
        print(f"anpr read: {exc}", file=sys.stderr)
        return 2
    status = 0
    for name in args.images:
        record: dict[str, Any] = {"image": name, "plates": [], "seconds": 0.0}
        plates: list[PlateResult] = []
        try:
            data = Path(name).read_bytes()
        except OSError as exc:
            record["error"] = f"cannot read file: {exc.strerror}"
        else:
            options = RecognitionOptions(format_hints=args.hints, min_reading_confidence=args.min_confidence)
            result = pipeline.recognize([data], options, plate_crops=[args.crops])[0]
            record["seconds"] = round(result.times.total, 6)
            if result.error is not None:
                record["error"] = str(result.error)
            elif not args.crops and looks_like_a_crop(result.width, result.height):
                print(
                    f"anpr read: {name} ({result.width}x{result.height}) looks like a plate crop, not a scene; "
                    "use --crops to read it whole",
                    file=sys.stderr,
                )
            plates = list(result.plates)
            # The JSON line keeps its three fields (other tools parse it); the plain line also says which readings
            # are only part of a plate (characters hidden, or a plate running off the frame's edge).
            record["plates"] = [
                {
                    "text": plate.reading.text,
                    "confidence": round(plate.reading.confidence, 4),
                    "box": plate.box.as_xywh(),
                }
                for plate in plates
            ]
        if "error" in record:
            status = 1
        if args.json:
            print(json.dumps(record), flush=True)
        else:
            found = ", ".join(_plain(plate) for plate in plates)
            detail = record.get("error") or found or "no plates"
            print(f"{name}: {detail} [{record['seconds'] * 1000:.1f} ms]", flush=True)
    return status


def _plain(plate: PlateResult) -> str:
    """One plate as ``anpr read`` prints it without ``--json``."""
    reading = plate.reading
    part = ", part of a plate" if reading.hidden_characters else ""
    return f"{reading.text or '?'} ({reading.confidence:.2f}{part}) at {plate.box.as_xywh()}"
