"""``python -m anpr.training evaluate --margins``: synthetic scenes end to end at other crop margins (no torch)."""

from __future__ import annotations

import argparse

from anpr.recognition import Box, load_manifest
from anpr.recognition.models import MODELS_DIR
from anpr.training.evaluate import WRONG_KINDS, add_arguments, crop_margins, end_to_end_scenes, wrong_kind


def test_margins_are_parsed() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert parser.parse_args(["--margins", "0", "0.1"]).margins == [0.0, 0.1]
    assert parser.parse_args([]).margins == []


def test_each_margin_reads_the_same_scenes() -> None:
    rows = crop_margins(load_manifest(MODELS_DIR), end_to_end_scenes(2), [0.0, 0.3])
    assert [r["crop_margin"] for r in rows] == [0.0, 0.3]
    # The same scenes and plates at every margin. (What is reported may differ: the margin changes the reading,
    # and with it whether the reading passes the model set's floor.)
    assert rows[0]["plates"] == rows[1]["plates"] > 0
    for row in rows:
        assert 0.0 <= row["exact"] <= row["folded"] <= row["detection_recall"] <= 1.0


def test_legible_figures_leave_out_the_plates_a_bar_crosses() -> None:
    scenes = end_to_end_scenes(30)
    hidden = sum(sum(s.occluded) for s in scenes)
    assert hidden > 0  # the first 30 held-out scenes have occluded plates
    row = crop_margins(load_manifest(MODELS_DIR), scenes, [0.05])[0]
    assert row["legible"]["plates"] == row["plates"] - hidden
    assert 0.0 <= row["legible"]["exact"] <= row["legible"]["folded"] <= row["legible"]["detection_recall"] <= 1.0


def test_close_ups_are_other_scenes_with_wide_plates() -> None:
    close = end_to_end_scenes(3, close_ups=True)
    widths = [float(b[2] - b[0]) for s in close for b in s.boxes]
    assert widths
    assert min(widths) > 300  # drawn 400-900 px wide, then tilted and warped
    assert close[0].jpeg != end_to_end_scenes(1)[0].jpeg


def test_close_ups_are_evaluated_by_default() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert parser.parse_args([]).close_ups == 250
    assert parser.parse_args(["--close-ups", "0"]).close_ups == 0


def test_every_reading_not_right_has_a_reason() -> None:
    row = crop_margins(load_manifest(MODELS_DIR), end_to_end_scenes(30), [0.05])[0]
    right = round(row["precision"] * row["readings"])
    assert sum(row["wrong_readings"].values()) == row["readings"] - right
    assert set(row["wrong_readings"]) == set(WRONG_KINDS)
    assert 0 <= row["partial_readings"] <= row["readings"]
    low, high = row["precision_interval_95"]
    assert low <= row["precision"] <= high


def test_wrong_kind_follows_the_plate_the_reading_overlaps_most() -> None:
    reading = Box(100, 100, 200, 50)
    legible, hidden = Box(100, 100, 200, 50), Box(150, 100, 200, 50)
    assert wrong_kind(reading, []) == "no_plate"
    assert wrong_kind(reading, [(legible, "CA123456", False), (hidden, "CA654321", True)]) == "misread"
    assert wrong_kind(reading, [(hidden, "CA654321", True)]) == "hidden_characters"
