"""How sure a plate reading is: a calibrated probability that its text is a plate's text, exactly.

The detector's score says how plate-like a box looks and the reader's character probabilities how sure each glyph
is, but neither is a probability of the thing a hotlist system needs: "this is a plate, and it says this". Their raw
product is not one either: it falls with every character (a long plate looks less sure than a two-letter badge)
and says nothing of the detector. So a small logistic model combines a few cheap features of a reading into that
probability; its weights are fitted on held-out synthetic scenes in which every plate is labelled
(``python -m anpr.training calibrate``) and travel with the model set in its manifest::

    scoring:
      version: 2026-12-06.1
      bias: -3.1
      weights: {detection_logit: 0.9, mean_log_char: 2.4, ...}
      min_confidence: 0.5   # the default operating point: readings below it are not reported
      min_detection_confidence: 0.3   # boxes scored below it by the detector are not read
      min_refined_confidence: 0.2     # nor boxes the refiner's second look scores below it

The features (:data:`FEATURES`) are about the reading as a plate: detector evidence, the reader's weakest and
average character, the length (plates have 4 to 8 characters; badges, stickers and timestamps do not), whether a
plate format with a specific syntax fits, how much the correction had to change, the box's shape, and whether
the reader saw characters it could not read (a bar across the plate: the text is then only part of the plate). A
manifest fitted before a feature existed has no weight for it, and the feature is then ignored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from anpr.recognition.errors import ModelError
from anpr.recognition.types import PlateResult

_EPS = 1e-6

FEATURES: tuple[str, ...] = (
    "detection_logit",  # logit of the detector's score
    "refined_logit",  # logit of the refiner's score (its second look), the detector's when there is no refiner
    "mean_log_char",  # mean log probability of the characters (0 for none)
    "min_log_char",  # log probability of the weakest character
    "length_1_2",  # one or two characters
    "length_3",  # three characters
    "length_9_10",  # nine or ten characters
    "length_over_10",  # eleven or more (timestamps, slogans)
    "specific_format",  # a plate format that constrains some position fits
    "format_log_weight",  # log of that format's prior weight (rare series and personalised plates are below 0)
    "format_confidence",  # the fitting format's share of the syntax evidence (0 without one)
    "corrected",  # characters the correction changed, per character
    "log_aspect",  # log of the box's width / height
    "hidden_characters",  # runs of characters the reader saw but could not read
)


def _logit(p: float) -> float:
    p = min(max(p, _EPS), 1.0 - _EPS)
    return math.log(p / (1.0 - p))


def features(plate: PlateResult) -> dict[str, float]:
    """The :data:`FEATURES` of one reading."""
    reading = plate.reading
    text = reading.text
    n = len(text)
    logs = [math.log(max(c, _EPS)) for c in reading.character_confidences] or [math.log(_EPS)]
    fmt = reading.format
    changed = sum(a != b for a, b in zip(text, reading.raw_text, strict=False)) if n else 0
    box = plate.box
    return {
        "detection_logit": _logit(plate.detection_confidence),
        "refined_logit": _logit(
            plate.refined_confidence if plate.refined_confidence is not None else plate.detection_confidence
        ),
        "mean_log_char": sum(logs) / len(logs),
        "min_log_char": min(logs),
        "length_1_2": float(n <= 2),
        "length_3": float(n == 3),
        "length_9_10": float(9 <= n <= 10),
        "length_over_10": float(n > 10),
        "specific_format": float(fmt is not None and fmt.specific),
        "format_log_weight": math.log(fmt.weight) if fmt is not None and fmt.weight > 0 else 0.0,
        "format_confidence": fmt.confidence if fmt is not None else 0.0,
        "corrected": changed / n if n else 0.0,
        "log_aspect": math.log(max(box.width, 1.0) / max(box.height, 1.0)),
        "hidden_characters": float(reading.hidden_characters),
    }


@dataclass(frozen=True, slots=True)
class PlateScorer:
    """A fitted logistic model over :data:`FEATURES` and its default operating point."""

    version: str
    bias: float
    weights: Mapping[str, float]
    min_confidence: float = 0.0
    # Boxes the detector scores below this are not read at all: on the calibration scenes almost no right reading
    # came from one (every box is read, so weak boxes are most of the time spent per frame).
    min_detection_confidence: float = 0.0
    # Likewise for the refiner's score, when the model set has a refiner.
    min_refined_confidence: float = 0.0

    def score(self, plate: PlateResult) -> float:
        """P(the reading's text is the plate's text), 0 for an empty reading."""
        return self.probability(features(plate)) if plate.reading.text else 0.0

    def probability(self, values: Mapping[str, float]) -> float:
        """The model's output for feature ``values`` (every name of :attr:`weights` must be there)."""
        z = self.bias + sum(weight * values[name] for name, weight in self.weights.items())
        return 1.0 / (1.0 + math.exp(-max(min(z, 60.0), -60.0)))

    def as_manifest(self) -> dict[str, object]:
        """The manifest's ``scoring`` entry."""
        return {
            "version": self.version,
            "bias": round(self.bias, 6),
            "weights": {name: round(float(w), 6) for name, w in self.weights.items()},
            "min_confidence": round(self.min_confidence, 4),
            "min_detection_confidence": round(self.min_detection_confidence, 4),
            "min_refined_confidence": round(self.min_refined_confidence, 4),
        }


def parse_scorer(entry: object, where: str) -> PlateScorer:
    """The manifest's ``scoring`` entry; :class:`ModelError` naming ``where`` when it is malformed."""
    if not isinstance(entry, dict):
        raise ModelError(f"{where} must be a mapping")
    floors = ("min_confidence", "min_detection_confidence", "min_refined_confidence")
    unknown = sorted(set(entry) - {"version", "bias", "weights", *floors})
    if unknown:
        raise ModelError(f"{where} has unknown key(s) {', '.join(unknown)}")
    weights = entry.get("weights")
    if not isinstance(weights, dict) or not weights:
        raise ModelError(f"{where}.weights must be a mapping of feature names to numbers")
    bad = sorted(str(name) for name in weights if name not in FEATURES)
    if bad:
        raise ModelError(f"{where}.weights names unknown feature(s) {', '.join(bad)}; known: {', '.join(FEATURES)}")
    try:
        parsed = {str(name): float(value) for name, value in weights.items()}
        bias = float(entry.get("bias", 0.0))
        values = [float(entry.get(name, 0.0)) for name in floors]
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{where}: weights, bias and the floors must be numbers ({exc})") from exc
    if not all(math.isfinite(v) for v in (*parsed.values(), bias)) or not all(0.0 <= v <= 1.0 for v in values):
        raise ModelError(f"{where}: weights and bias must be finite and the floors within [0, 1]")
    return PlateScorer(str(entry.get("version", "")), bias, parsed, *values)
