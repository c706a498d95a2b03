"""Vehicle-pass tracker: sequences of reads -> exactly one pass event (early, updates, final) per vehicle."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pytest
from prometheus_client import REGISTRY

from anpr.ingest.server import tracker_config
from anpr.ingest.settings import IngestSettings
from anpr.ingest.tracking.model import Box, Direction, FrameReads, PassEvent, PlateRead, Stage
from anpr.ingest.tracking.text import edit_distance, similarity
from anpr.ingest.tracking.tracker import PassTracker, TrackerConfig
from anpr.ingest.tracking.voting import vote

FPS = 10.0


@dataclass(frozen=True)
class Car:
    """A plate that moves linearly across the frame during [first, last] frame indices."""

    texts: tuple[str, ...]  # what the reader says in each frame it sees the plate (cycled)
    first: int
    last: int
    x0: float = 0.0
    y: float = 400.0
    dx: float = 60.0
    confidence: float = 0.9


def frames(cars: Iterable[Car], count: int, camera: str = "cam-1") -> list[FrameReads]:
    cars = list(cars)
    result = []
    for index in range(count):
        reads = []
        for car in cars:
            if car.first <= index <= car.last:
                step = index - car.first
                text = car.texts[step % len(car.texts)]
                box = Box(car.x0 + car.dx * step, car.y, 120, 30)
                reads.append(PlateRead(text=text, confidence=car.confidence, box=box))
        result.append(FrameReads(camera, f"f{index}", 1_700_000_000 + index / FPS, tuple(reads)))
    return result


def run(sequence: list[FrameReads], config: TrackerConfig | None = None) -> list[PassEvent]:
    tracker = PassTracker(config)
    events: list[PassEvent] = []
    for frame in sequence:
        events.extend(tracker.observe(frame))
    events.extend(tracker.flush())
    return events


def finals(events: list[PassEvent]) -> list[str]:
    return sorted(event.text for event in events if event.stage is Stage.FINAL)


CASES = {
    "one clean pass": ([Car(("CA123456",), 0, 15)], ["CA123456"]),
    "misreads outvoted per character": ([Car(("CA123456", "CA123458", "CA123456", "CA1Z3456"), 0, 15)], ["CA123456"]),
    "two cars in the same frame": (
        [Car(("CA111111",), 0, 12, y=100), Car(("GP222222",), 0, 12, y=600)],
        ["CA111111", "GP222222"],
    ),
    "a car leaves and another enters": (
        [Car(("CA111111",), 0, 8), Car(("WP333333",), 20, 30)],
        ["CA111111", "WP333333"],
    ),
    "missed detections inside a pass": ([Car(("CA123456",), 0, 5), Car(("CA123456",), 7, 12, x0=420)], ["CA123456"]),
    "a single stray read is no pass": ([Car(("XX99",), 5, 5)], []),
    # The plate event contract (anpr.domain.plate_events): 2-10 characters, or it is not a plate.
    "a one-character reading is no pass": ([Car(("7",), 0, 15)], []),
    "an eleven-character reading is no pass": ([Car(("CA123456789",), 0, 15)], []),
    "cars following closely in the same lane": (
        [Car(("CA111111",), 0, 10, dx=100), Car(("CA777000",), 3, 13, dx=100)],
        ["CA111111", "CA777000"],
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_one_final_event_per_pass(name: str) -> None:
    cars, expected = CASES[name]
    events = run(frames(cars, 40))
    assert finals(events) == expected
    # Every event id has exactly one FINAL and revisions go 1, 2, 3 ... without gaps.
    by_id: dict[str, list[PassEvent]] = {}
    for event in events:
        by_id.setdefault(event.event_id, []).append(event)
    for revisions in by_id.values():
        assert [e.revision for e in revisions] == list(range(1, len(revisions) + 1))
        assert [e.stage for e in revisions].count(Stage.FINAL) == 1
        assert revisions[-1].stage is Stage.FINAL


def test_passes_that_are_not_plates_are_counted_not_emitted() -> None:
    def discarded(reason: str) -> float:
        return REGISTRY.get_sample_value("anpr_ingest_passes_discarded_total", {"reason": reason}) or 0.0

    before = discarded("not_a_plate"), discarded("too_few_reads")
    assert run(frames([Car(("7",), 0, 15), Car(("XX99",), 5, 5, y=700)], 40)) == []
    assert (discarded("not_a_plate") - before[0], discarded("too_few_reads") - before[1]) == (1, 1)


def test_a_pass_voted_too_short_is_voted_again_over_its_plate_like_reads() -> None:
    # The reader loses the first character of a two-character plate most of the time: the vote settles on one
    # character, which is no plate; the plate-like reads still make the pass.
    events = run(frames([Car(("A", "A", "A", "CA", "CA"), 0, 14)], 20))
    assert [(e.stage, e.text) for e in events] == [(Stage.FINAL, "CA")]


def test_early_event_comes_before_the_pass_ends_and_final_updates_it() -> None:
    tracker = PassTracker(TrackerConfig(early_min_reads=3))
    sequence = frames([Car(("CA123456",), 0, 20)], 21)
    emitted = [(index, event) for index, frame in enumerate(sequence) for event in tracker.observe(frame)]
    assert [(index, event.stage) for index, event in emitted] == [(2, Stage.EARLY)]
    final = tracker.flush()
    assert [event.stage for event in final] == [Stage.FINAL]
    assert final[0].event_id == emitted[0][1].event_id
    assert final[0].revision == 2
    assert final[0].frame_count == 21
    assert final[0].first_seen == sequence[0].capture_time
    assert final[0].last_seen == sequence[20].capture_time


def test_update_revision_when_the_vote_changes() -> None:
    texts = ("CA123458",) * 3 + ("CA123456",) * 10
    events = run([f for f in frames([Car(texts, 0, 12)], 13)])
    assert [e.stage for e in events] == [Stage.EARLY, Stage.UPDATE, Stage.FINAL]
    assert events[0].text == "CA123458"
    assert events[-1].text == "CA123456"
    assert "CA123458" in [text for text, _ in events[-1].alternatives]


def test_pass_ends_by_timeout_through_expire() -> None:
    tracker = PassTracker(TrackerConfig(timeout_seconds=1.0))
    sequence = frames([Car(("CA123456",), 0, 4)], 5)
    for frame in sequence:
        tracker.observe(frame)
    assert tracker.expire("cam-1", sequence[-1].capture_time + 0.5) == []
    ended = tracker.expire("cam-1", sequence[-1].capture_time + 1.5)
    assert [e.stage for e in ended] == [Stage.FINAL]
    assert tracker.active_tracks() == 0


def test_event_ids_are_deterministic_across_replays() -> None:
    sequence = frames([Car(("CA111111",), 0, 10), Car(("GP222222",), 0, 10, y=700)], 12)
    first, second = run(sequence), run(sequence)
    assert [(e.event_id, e.revision) for e in first] == [(e.event_id, e.revision) for e in second]
    assert len({e.event_id for e in first}) == 2


def test_cameras_are_tracked_independently() -> None:
    a = frames([Car(("CA123456",), 0, 6)], 7, camera="cam-a")
    b = frames([Car(("CA123456",), 0, 6)], 7, camera="cam-b")
    events = run([frame for pair in zip(a, b, strict=True) for frame in pair])
    assert sorted(e.camera_id for e in events if e.stage is Stage.FINAL) == ["cam-a", "cam-b"]


def test_direction_from_plate_growth() -> None:
    tracker = PassTracker()
    for index in range(6):
        size = 60 + 20 * index
        read = PlateRead("CA123456", 0.9, Box(500, 400, size, size / 4))
        tracker.observe(FrameReads("cam-1", f"f{index}", 100 + index / FPS, (read,)))
    [event] = tracker.flush()
    assert event.direction is Direction.APPROACHING


def test_best_crop_prefers_the_most_confident_read_with_a_crop() -> None:
    tracker = PassTracker()
    for index, (confidence, crop) in enumerate([(0.95, None), (0.7, b"low"), (0.9, b"best"), (0.8, b"mid")]):
        read = PlateRead("CA123456", confidence, Box(100 + 40 * index, 400, 120, 30), crop=crop)
        tracker.observe(FrameReads("cam-1", f"f{index}", 100 + index / FPS, (read,)))
    [event] = tracker.flush()
    assert event.best_crop == b"best"
    assert event.best_frame_id == "f2"


@pytest.mark.parametrize(
    ("a", "b", "distance"),
    [("", "", 0), ("CA123", "CA123", 0), ("CA123", "CA128", 1), ("CA123", "CA1234", 1), ("ABC", "", 3)],
)
def test_edit_distance(a: str, b: str, distance: int) -> None:
    assert edit_distance(a, b) == distance
    assert edit_distance(b, a) == distance


def test_similarity_is_neutral_for_empty_text() -> None:
    assert similarity("", "CA1") == 0.5
    assert similarity("CA123", "CA123") == 1.0


def test_vote_weights_characters_by_confidence() -> None:
    box = Box(0, 0, 10, 10)
    reads = [
        PlateRead("CA8", 0.9, box, character_confidences=(0.9, 0.9, 0.3)),
        PlateRead("CA8", 0.9, box, character_confidences=(0.9, 0.9, 0.3)),
        PlateRead("CAB", 0.9, box, character_confidences=(0.9, 0.9, 0.95)),
        PlateRead("CAB", 0.9, box, character_confidences=(0.9, 0.9, 0.95)),
    ]
    result = vote(reads)
    assert result is not None
    assert result.text == "CAB"
    assert result.alternatives[0][0] == "CA8"
    assert vote([PlateRead("", 0.1, box)]) is None


def _partial_pass(texts: list[tuple[str, int]], config: TrackerConfig | None = None) -> list[PassEvent]:
    """One car read in consecutive frames; each read is (text, runs of hidden characters)."""
    sequence = [
        FrameReads(
            "cam-1",
            f"f{index}",
            1_700_000_000 + index / FPS,
            (PlateRead(text, 0.95, Box(60.0 * index, 400, 120, 30), hidden_characters=hidden),),
        )
        for index, (text, hidden) in enumerate(texts)
    ]
    return run(sequence, config)


def test_partial_reads_do_not_outvote_whole_ones() -> None:
    # A bar hides the last two characters in most frames; the frames that saw the whole plate decide the text.
    events = _partial_pass([("CA1234", 1)] * 8 + [("CA123456", 0)] * 2)
    [final] = [e for e in events if e.stage is Stage.FINAL]
    assert (final.text, final.hidden_characters, final.raw_text) == ("CA123456", 0, "CA123456")


def test_a_pass_seen_only_in_part_says_so_and_raises_no_early_event() -> None:
    events = _partial_pass([("CA1234", 1)] * 10, TrackerConfig(early_min_reads=3))
    assert [(e.stage, e.text, e.hidden_characters) for e in events] == [(Stage.FINAL, "CA1234", 1)]


def _crop_camera_events(texts: list[tuple[str, float]], config: TrackerConfig | None = None) -> list[PassEvent]:
    """Every event of a plate-crop camera sending one crop (the whole image as the box) per (text, seconds)."""
    tracker = PassTracker(config)
    events: list[PassEvent] = []
    for index, (text, at) in enumerate(texts):
        read = PlateRead(text, 0.9, Box(0, 0, 200, 60))
        events.extend(tracker.observe(FrameReads("gate-1", f"f{index}", 1_700_000_000 + at, (read,), plate_crops=True)))
    events.extend(tracker.flush())
    return events


def _crop_passes(texts: list[tuple[str, float]], config: TrackerConfig | None = None) -> list[PassEvent]:
    """The final events of :func:`_crop_camera_events`."""
    return [e for e in _crop_camera_events(texts, config) if e.stage is Stage.FINAL]


def test_a_plate_crop_camera_makes_one_pass_of_each_vehicle_it_sends_a_crop_of() -> None:
    # A fixed ANPR camera sends the plate it found, whole image as the box: one crop for most vehicles, three for
    # one of them; scene frames would need two agreeing reads for a pass.
    crops = ["CA123456", "GP77ABGP", "GP77ABGP", "GP77ABGP", "WP31415"]
    config = TrackerConfig(early_min_reads=3, final_min_reads=2)
    events = _crop_camera_events([(text, 0.3 * index) for index, text in enumerate(crops)], config)
    assert finals(events) == ["CA123456", "GP77ABGP", "WP31415"]
    # Each pass raised its early event on its first crop, not after three.
    assert [e.text for e in events if e.stage is Stage.EARLY] == ["CA123456", "GP77ABGP", "WP31415"]
    assert [e.frame_count for e in events if e.stage is Stage.FINAL and e.text == "GP77ABGP"] == [3]


def test_two_vehicles_of_one_series_at_a_crop_camera_stay_two_passes() -> None:
    # Crops carry no motion: two plates half alike, 0.4 s apart (two lanes of one gantry), are two vehicles. The
    # scene rule (similarity >= 0.5) joined them and lost the second vehicle's event.
    finals = _crop_passes([("CA123456", 0.0), ("CA124789", 0.4)])
    assert [(e.text, e.frame_count) for e in finals] == [("CA123456", 1), ("CA124789", 1)]
    joined = _crop_passes([("CA123456", 0.0), ("CA124789", 0.4)], TrackerConfig(crop_max_text_distance=4))
    assert [e.frame_count for e in joined] == [2]  # one event for two vehicles


def test_crops_of_one_vehicle_one_slip_apart_stay_one_pass() -> None:
    finals = _crop_passes([("GP77ABGP", 0.0), ("GP77A8GP", 0.2), ("GP77ABGP", 0.4)])
    assert [(e.text, e.frame_count) for e in finals] == [("GP77ABGP", 3)]


def test_a_lone_read_of_a_scene_camera_is_still_no_pass() -> None:
    read = PlateRead("CA123456", 0.9, Box(0, 0, 200, 60))
    tracker = PassTracker()
    tracker.observe(FrameReads("cam-1", "f0", 1_700_000_000, (read,)))
    assert tracker.flush() == []


def _parked_car(reads: list[PlateRead]) -> list[FrameReads]:
    """A car parked in view: one read per frame at the same place, 0.2 s apart."""
    return [FrameReads("cam-1", f"f{i}", 1_700_000_000 + 0.2 * i, (read,)) for i, read in enumerate(reads)]


def _parked_read(text: str, confidence: float, crop: bytes | None = None) -> PlateRead:
    return PlateRead(text, confidence, Box(600, 400, 120, 30), crop=crop)


def test_a_car_parked_in_view_stays_one_pass_with_every_frame_counted() -> None:
    """500 frames of one parked car, kept to 64 reads for the vote: one early and one final event that still say
    when the pass began and ended and how many frames saw it, and show the crop of its most confident read."""
    reads = [_parked_read("CA123456", 0.8 + 0.1 * (i % 3 == 0), crop=b"frame-%d" % i) for i in range(500)]
    reads[7] = _parked_read("CA123456", 0.99, crop=b"the sharpest crop")
    events = run(_parked_car(reads), TrackerConfig(max_reads_per_pass=64))
    assert [e.stage for e in events] == [Stage.EARLY, Stage.FINAL]
    early, final = events
    assert final.event_id == early.event_id
    assert (final.text, final.frame_count, final.best_crop) == ("CA123456", 500, b"the sharpest crop")
    assert final.first_seen == 1_700_000_000
    assert final.last_seen == pytest.approx(1_700_000_000 + 0.2 * 499)


def test_a_long_pass_votes_over_its_most_confident_reads() -> None:
    """A late stretch of unsure misreads (dusk) does not outvote the confident reads kept from earlier, and the
    early event needs the configured number of agreeing reads even where that is more than the reads kept."""
    reads = [_parked_read("CA123456", 0.9)] * 100 + [_parked_read("CA128456", 0.4)] * 300
    [*_, final] = run(_parked_car(reads), TrackerConfig(max_reads_per_pass=16))
    assert (final.stage, final.text) == (Stage.FINAL, "CA123456")

    config = TrackerConfig(max_reads_per_pass=8, early_min_reads=20)
    events = run(_parked_car([_parked_read("CA123456", 0.9)] * 30), config)
    assert [e.stage for e in events] == [Stage.EARLY, Stage.FINAL]


def test_an_unsure_car_parked_in_view_is_reported_before_it_leaves() -> None:
    """Reads too unsure for an early event make one once the car has stayed early_after_seconds, not hours later
    when it leaves; a car that drives past with the same reads still gets only its final event."""
    unsure = _parked_read("CA123456", 0.3)
    events = run(_parked_car([unsure] * 500), TrackerConfig(early_after_seconds=10.0))
    assert [e.stage for e in events] == [Stage.EARLY, Stage.FINAL]
    early = events[0]
    assert early.text == "CA123456"
    assert early.last_seen - early.first_seen == pytest.approx(10.0)

    passing = frames([Car(("CA123456",), 0, 8, confidence=0.3)], 9)
    assert [e.stage for e in run(passing, TrackerConfig(early_after_seconds=10.0))] == [Stage.FINAL]


def test_a_car_parked_with_its_plate_beyond_the_frames_edge_is_reported_before_it_leaves() -> None:
    """Only partial reads (two characters beyond the edge): no early event from them in an ordinary pass, but a
    parked car's pass raises its partial early event after early_after_seconds, marked as partial."""
    cut = PlateRead("123456", 0.95, Box(0, 400, 90, 30), hidden_characters=1)
    events = run(_parked_car([cut] * 500), TrackerConfig(early_after_seconds=10.0))
    assert [(e.stage, e.text, e.hidden_characters) for e in events] == [
        (Stage.EARLY, "123456", 1),
        (Stage.FINAL, "123456", 1),
    ]
    assert events[0].last_seen - events[0].first_seen == pytest.approx(10.0)
    # Should the car move fully into view, the whole plate revises the event.
    whole = PlateRead("CA123456", 0.95, Box(0, 400, 120, 30))
    events = run(_parked_car([cut] * 100 + [whole] * 20), TrackerConfig(early_after_seconds=10.0))
    assert [(e.stage, e.text, e.hidden_characters) for e in events] == [
        (Stage.EARLY, "123456", 1),
        (Stage.UPDATE, "CA123456", 0),
        (Stage.FINAL, "CA123456", 0),
    ]


def test_the_service_passes_its_tracking_settings_to_the_tracker() -> None:
    settings = IngestSettings.model_construct(
        track_max_reads=32, crop_max_text_distance=2, early_min_reads=4, early_after_seconds=30.0
    )
    config = tracker_config(settings)
    assert (config.max_reads_per_pass, config.crop_max_text_distance, config.early_min_reads) == (32, 2, 4)
    assert config.early_after_seconds == 30.0
