"""Choosing the default operating point: the precision/recall curve, the floor and the detector floor."""

from __future__ import annotations

import math

import numpy as np
import pytest

from anpr.recognition.scoring import FEATURES
from anpr.training.calibrate import (
    Reading,
    curve,
    floor_keeping,
    hotlist_point,
    operating_point,
    order_statistic,
    recall_preserving_point,
)
from anpr.training.evaluate import EncodedScene


def _reading(
    score: float, correct: bool, scene: int, plate: int | None, detection: float = 0.8, on_plate: bool = True
) -> Reading:
    values = [0.0] * len(FEATURES)
    values[FEATURES.index("detection_logit")] = math.log(detection / (1 - detection))
    values[FEATURES.index("mean_log_char")] = score  # the test's "score" rides in a feature
    return Reading(tuple(values), score, correct, scene, plate, on_plate)


def _scenes(plates: int, occluded: tuple[bool, ...] = ()) -> list[EncodedScene]:
    hidden = occluded or (False,) * plates
    boxes = np.zeros((plates, 4), np.float32)
    return [EncodedScene(b"", boxes, tuple("X" * plates), hidden)]


def test_the_curve_counts_plates_once_and_leaves_hidden_plates_out_of_recall() -> None:
    rows = [
        _reading(0.9, True, 0, 0),
        _reading(0.8, True, 0, 0),  # a second box reading the same plate right
        _reading(0.7, False, 0, None, on_plate=False),
        _reading(0.6, True, 0, 1),
        _reading(0.5, True, 0, 2),  # plate 2 is occluded: no recall for it
    ]
    points = curve(rows, _scenes(3, (False, False, True)), lambda r: r.raw_confidence)
    by_floor = {p["floor"]: p for p in points}
    assert by_floor[0.7]["plate_precision"] == pytest.approx(2 / 3)  # the wrong one was on no plate
    assert by_floor[0.8]["recall"] == pytest.approx(0.5)
    assert by_floor[0.7]["precision"] == pytest.approx(2 / 3)
    assert by_floor[0.5]["recall"] == pytest.approx(1.0)
    assert by_floor[0.5]["readings"] == 5


def test_the_operating_point_is_the_most_recall_at_the_precision_asked() -> None:
    points = [
        {"floor": 0.9, "precision": 1.0, "plate_precision": 1.0, "recall": 0.5, "readings": 5},
        {"floor": 0.6, "precision": 0.9, "plate_precision": 0.99, "recall": 0.9, "readings": 10},
        {"floor": 0.2, "precision": 0.8, "plate_precision": 0.85, "recall": 0.97, "readings": 14},
    ]
    assert operating_point(points, 0.99)["floor"] == 0.6  # readings on a plate, by default
    assert operating_point(points, 0.99, key="precision")["floor"] == 0.9  # exactly right
    assert operating_point(points, 1.0)["floor"] == 0.9
    assert operating_point(points[2:], 0.99)["floor"] == 0.2  # none reaches it: the most precise there is


def test_the_detection_floor_keeps_the_share_of_right_readings_asked_with_the_confidence_asked() -> None:
    rows = [_reading(0.9, True, 0, i, detection=d) for i, d in enumerate(np.linspace(0.3, 0.9, 1000))]
    floor = floor_keeping(rows, "detection_logit", 0.99, confidence=0.9)
    kept = sum(1 / (1 + math.exp(-r.values[FEATURES.index("detection_logit")])) >= floor for r in rows)
    # Of 1,000 samples, the 6th lowest lies below the 1 % quantile with probability 0.93 (the 7th: 0.87), so the
    # floor keeps 995 of these boxes, not the 990 a plain empirical quantile would.
    assert kept == 995
    assert floor_keeping(rows, "detection_logit", 0.99, confidence=0.5) > floor  # less sure: higher
    # Too few readings for the confidence asked: the lowest one.
    assert floor_keeping(rows[::10], "detection_logit", 0.99, confidence=0.9) == pytest.approx(0.3)
    assert floor_keeping([], "detection_logit", 0.99) == 0.0


def test_order_statistics_of_a_quantile() -> None:
    # P(Binomial(1000, 0.01) >= 6) = 0.934 and >= 7: 0.871.
    assert order_statistic(1000, 0.01, 0.9) == 6
    assert order_statistic(1000, 0.01, 0.87) == 7
    assert order_statistic(100, 0.01, 0.9) == 0  # 1 - 0.99^100 = 0.63: not even the lowest is that sure
    assert order_statistic(2900, 0.001, 0.9) == 1  # the project's calibration: the lowest right reading
    assert order_statistic(10_000, 0.5, 0.5) == 5000  # the median, and no overflow on the way
    assert order_statistic(10, 0.0, 0.9) == 0
    assert order_statistic(10, 1.0, 0.9) == 10


# A curve from the highest floor down: 99 % of the right readings are kept at 0.1, where 95 % lie on a plate.
_FOUR_FLOORS = [
    {"floor": 0.9, "precision": 1.0, "plate_precision": 1.0, "recall": 0.5, "readings": 5},
    {"floor": 0.4, "precision": 0.9, "plate_precision": 0.99, "recall": 0.85, "readings": 10},
    {"floor": 0.1, "precision": 0.8, "plate_precision": 0.95, "recall": 0.895, "readings": 12},
    {"floor": 0.0, "precision": 0.5, "plate_precision": 0.6, "recall": 0.9, "readings": 20},
]


def test_the_recall_preserving_point_keeps_the_share_of_right_readings_asked() -> None:
    points = _FOUR_FLOORS
    assert recall_preserving_point(points, 0.99)["floor"] == 0.1  # 0.895 >= 0.99 * 0.9
    assert recall_preserving_point(points, 0.9)["floor"] == 0.4
    assert recall_preserving_point([], 0.99)["floor"] == 0.0


def test_the_hotlist_point_raises_the_floor_when_too_few_readings_lie_on_a_plate() -> None:
    points = _FOUR_FLOORS
    # 99 % of the right readings are kept at 0.1, where only 95 % of the readings lie on a plate.
    assert hotlist_point(points, 0.99, 0.97)["floor"] == 0.4
    assert hotlist_point(points, 0.99, 0.95)["floor"] == 0.1  # the guard is met: the recall-preserving point
    assert hotlist_point(points, 0.9, 0.97)["floor"] == 0.4
