"""Associates plate reads across the frames of each camera and emits one event (with revisions) per pass.

A *track* follows one plate through consecutive frames. A new read joins the track whose predicted position
(last box moved by the track's velocity) is close and whose text is similar; otherwise it starts a track. A track
ends when its plate was not seen for a while (capture time) or for several frames of its camera; then its final
event is emitted. An early event goes out as soon as a few reads agree, so a hotlist hit is not held back until the
vehicle has left.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from anpr.domain.plate_events import is_plate_text
from anpr.ingest import metrics
from anpr.ingest.tracking.model import Box, Direction, FrameReads, Gps, PassEvent, PlateRead, Stage
from anpr.ingest.tracking.text import edit_distance, similarity
from anpr.ingest.tracking.voting import Vote, vote

# Fixed namespace so that event ids are the same on every replica and every replay of the same frames.
EVENT_NAMESPACE = uuid.UUID("6f1d4c1e-3a55-5b8e-9a0f-2f0c8e3b7a11")


@dataclass(frozen=True)
class TrackerConfig:
    """Tuning of association and emission."""

    timeout_seconds: float = 1.5
    max_missed_frames: int = 8
    early_min_reads: int = 3
    early_min_confidence: float = 0.5
    # A pass still open this long raises its early event without early_min_confidence, and from partial reads too:
    # the car is parked or queued in view, and its reads are all the evidence there will be until it leaves, which
    # can be hours. Ordinary passes last a few seconds and are not affected; the event it raises is the one the pass
    # would end with anyway.
    early_after_seconds: float = 10.0
    final_min_reads: int = 2
    # How far (in plate widths) a read may be from the predicted position and still join the track.
    max_centre_distance_widths: float = 2.5
    # Without a velocity yet (second read of a track) the plate may have moved further.
    max_first_step_widths: float = 6.0
    min_text_similarity: float = 0.5
    # A camera that sends plate crops gives no motion to go by (every box is the whole crop), so its crops join a
    # pass on their text alone, and only when it is the pass's text or one slip of the reader away. The scene
    # rule (similarity >= 0.5) joined two different plates of one South African series in 5.1 % of synthetic pairs
    # (`CA123456` and `CA124789`): the second vehicle's event, and any alert on it, was lost
    # (bench/ingest/crop_association.py).
    crop_max_text_distance: int = 1
    max_alternatives: int = 5
    # A pass votes over at most this many reads: its first and latest, and its most confident others. A car parked in
    # view of a camera stays one pass for as long as it stays, and a vote over every read since it arrived cost
    # about 17 us per read on every frame (106 ms per frame after 20 minutes at 5 frames/s), on the event loop,
    # under the lock every camera's frames share (bench/ingest/long_pass.py). Raised to early_min_reads or
    # final_min_reads where one of those is larger (reads_kept), so both rules can still be met.
    max_reads_per_pass: int = 64

    @property
    def reads_kept(self) -> int:
        """Reads a pass keeps: ``max_reads_per_pass``, or more where the early or final rule needs more."""
        return max(self.max_reads_per_pass, self.early_min_reads, self.final_min_reads)


@dataclass
class _Observation:
    frame_id: str
    time: float
    read: PlateRead
    gps: Gps | None
    # How much the read tells the vote, lowest first: text, whole, plate text, confidence. Computed once: a long
    # pass compares its kept reads by it on every frame.
    evidence: tuple[bool, bool, bool, float] = field(init=False)

    def __post_init__(self) -> None:
        read = self.read
        self.evidence = bool(read.text), not read.hidden_characters, is_plate_text(read.text), read.confidence


@dataclass
class _Track:
    event_id: str
    camera_id: str
    observations: list[_Observation] = field(default_factory=list)
    velocity: tuple[float, float] | None = None  # pixels per second
    missed_frames: int = 0
    revision: int = 0
    emitted_text: str | None = None
    model_version: str = ""
    plate_crops: bool = False  # opened by a camera that sends plate crops
    frame_count: int = 0  # frames that added a read, also those whose read was let go (see keep_at_most)

    @property
    def last(self) -> _Observation:
        return self.observations[-1]

    def predicted_box(self, at: float) -> Box:
        if self.velocity is None:
            return self.last.read.box
        dt = at - self.last.time
        return self.last.read.box.shifted(self.velocity[0] * dt, self.velocity[1] * dt)

    def add(self, observation: _Observation) -> None:
        previous = self.last
        dt = observation.time - previous.time
        if dt > 0:
            (px, py), (nx, ny) = previous.read.box.centre, observation.read.box.centre
            measured = ((nx - px) / dt, (ny - py) / dt)
            # Smooth the velocity so one jittery detection does not throw the prediction off.
            self.velocity = (
                measured
                if self.velocity is None
                else (0.5 * self.velocity[0] + 0.5 * measured[0], 0.5 * self.velocity[1] + 0.5 * measured[1])
            )
        self.observations.append(observation)
        self.frame_count += 1 if observation.frame_id != previous.frame_id else 0
        self.missed_frames = 0

    def keep_at_most(self, limit: int) -> None:
        """Let go of the least telling reads beyond ``limit``: never the first (the pass's identity, start and
        direction) nor the latest (its motion and timeout); reads without text, then partial reads, then reads that
        are not plate text, then the least confident; and never the one whose crop the event shows."""
        while len(self.observations) > max(limit, 3):
            shown = max(range(len(self.observations)), key=lambda i: _shown_first(self.observations[i]))
            middle = [i for i in range(1, len(self.observations) - 1) if i != shown]
            weakest = min(middle, key=lambda i: (self.observations[i].evidence, i))
            del self.observations[weakest]


class PassTracker:
    """Per-camera multi-plate tracker; feed it frames in capture order per camera."""

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config or TrackerConfig()
        self._tracks: dict[str, list[_Track]] = {}

    def active_tracks(self, camera_id: str | None = None) -> int:
        """Tracks still open (for one camera, or all)."""
        if camera_id is not None:
            return len(self._tracks.get(camera_id, ()))
        return sum(len(tracks) for tracks in self._tracks.values())

    def observe(self, frame: FrameReads) -> list[PassEvent]:
        """Take one frame's reads; return the events (early, update or final) this frame caused."""
        tracks = self._tracks.setdefault(frame.camera_id, [])
        events: list[PassEvent] = []
        # Tracks that timed out before this frame end first, so a returning plate starts a new pass.
        for track in [t for t in tracks if frame.capture_time - t.last.time > self.config.timeout_seconds]:
            tracks.remove(track)
            events.extend(self._finish(track))

        assigned = self._associate(tracks, frame)
        touched: set[int] = set()
        for index, read in enumerate(frame.reads):
            observation = _Observation(frame.frame_id, frame.capture_time, read, frame.gps)
            found = assigned.get(index)
            if found is None:
                if not read.text:
                    continue  # an unreadable plate alone does not open a pass
                track = _Track(
                    event_id=_event_id(frame, read),
                    camera_id=frame.camera_id,
                    plate_crops=frame.plate_crops,
                    frame_count=1,
                )
                track.observations.append(observation)
                tracks.append(track)
            else:
                track = found
                track.add(observation)
                track.keep_at_most(self.config.reads_kept)
            if frame.model_version:
                track.model_version = frame.model_version
            touched.add(id(track))
            event = self._maybe_early_or_update(track)
            if event is not None:
                events.append(event)

        for track in list(tracks):
            if id(track) in touched:
                continue
            track.missed_frames += 1
            if track.missed_frames >= self.config.max_missed_frames:
                tracks.remove(track)
                events.extend(self._finish(track))
        return events

    def expire(self, camera_id: str, now: float) -> list[PassEvent]:
        """End the camera's tracks not seen since ``now - timeout`` (call periodically when frames stop)."""
        tracks = self._tracks.get(camera_id, [])
        events: list[PassEvent] = []
        for track in [t for t in tracks if now - t.last.time > self.config.timeout_seconds]:
            tracks.remove(track)
            events.extend(self._finish(track))
        if not tracks:
            self._tracks.pop(camera_id, None)
        return events

    def cameras(self) -> list[str]:
        """Cameras with open tracks."""
        return [camera for camera, tracks in self._tracks.items() if tracks]

    def flush(self) -> list[PassEvent]:
        """End every open track now (shutdown)."""
        events: list[PassEvent] = []
        for tracks in self._tracks.values():
            for track in tracks:
                events.extend(self._finish(track))
        self._tracks.clear()
        return events

    def open_pass_starts(self, camera_id: str) -> set[str]:
        """Frame ids where the camera's open passes began (their frames must stay replayable)."""
        return {track.observations[0].frame_id for track in self._tracks.get(camera_id, ())}

    def _associate(self, tracks: list[_Track], frame: FrameReads) -> dict[int, _Track]:
        config = self.config
        candidates: list[tuple[float, int, int]] = []
        for t_index, track in enumerate(tracks):
            predicted = track.predicted_box(frame.capture_time)
            reference_text = _vote_text(track)
            for r_index, read in enumerate(frame.reads):
                width = max(predicted.width, read.box.width, 1.0)
                distance = predicted.centre_distance(read.box) / width
                limit = config.max_first_step_widths if track.velocity is None else config.max_centre_distance_widths
                text_score = similarity(reference_text, read.text)
                exact = bool(read.text) and read.text == reference_text and len(read.text) >= 4
                if text_score < config.min_text_similarity:
                    continue
                if frame.plate_crops and _too_far_for_a_crop(reference_text, read.text, config.crop_max_text_distance):
                    continue
                if distance > limit and not exact:
                    continue
                motion_score = max(predicted.iou(read.box), 1.0 - min(distance / limit, 1.0))
                candidates.append((0.5 * motion_score + 0.5 * text_score, t_index, r_index))
        # Greedy by best score: good enough for the few plates in one frame, and deterministic.
        candidates.sort(key=lambda item: (-item[0], item[1], item[2]))
        used_tracks: set[int] = set()
        assigned: dict[int, _Track] = {}
        for _, t_index, r_index in candidates:
            if t_index in used_tracks or r_index in assigned:
                continue
            used_tracks.add(t_index)
            assigned[r_index] = tracks[t_index]
        return assigned

    def _maybe_early_or_update(self, track: _Track) -> PassEvent | None:
        result = vote([o.read for o in track.observations], self.config.max_alternatives)
        # A vote that is not a plate (one character of a partly read plate) is no event; later reads may fix it.
        if result is None or not is_plate_text(result.text):
            return None
        if track.emitted_text is None:
            # An early alert goes out before the pass ends, so it waits for a whole read: part of a plate can
            # equal another plate. A pass that lingers (a car parked with its plate beyond the frame's edge) gets
            # its partial event early too: marked partial, it alerts only as the hotlist lets partial reads, and
            # otherwise its hotlisted car would be reported only when it leaves.
            lingering = track.last.time - track.observations[0].time >= self.config.early_after_seconds
            if (
                (not result.hidden_characters or lingering)
                and result.agreeing_reads >= self._min_reads(track, self.config.early_min_reads)
                and (result.confidence >= self.config.early_min_confidence or lingering)
            ):
                return self._emit(track, result, Stage.EARLY)
            return None
        if result.text != track.emitted_text:
            return self._emit(track, result, Stage.UPDATE)
        return None

    @staticmethod
    def _min_reads(track: _Track, configured: int) -> int:
        # Several agreeing reads are what tell a pass from a false detection in a scene; a plate-crop camera has
        # found the plate itself and often sends one crop per vehicle, which must still make a pass.
        return 1 if track.plate_crops else configured

    def _finish(self, track: _Track) -> list[PassEvent]:
        result = vote([o.read for o in track.observations], self.config.max_alternatives)
        if result is None:
            return []
        texted = sum(1 for o in track.observations if o.read.text)
        if track.emitted_text is None and texted < self._min_reads(track, self.config.final_min_reads):
            metrics.PASSES_DISCARDED.labels("too_few_reads").inc()
            return []  # a lone read is more likely a false detection than a pass
        if not is_plate_text(result.text):
            # The vote settled on a length no plate has. Reads too short (or long) to be a plate are not evidence
            # of one: vote again over the plate-like reads, if there are enough of them (or the pass has already
            # been announced and needs its final revision).
            plates = [o.read for o in track.observations if is_plate_text(o.read.text)]
            enough = track.emitted_text is not None or len(plates) >= self._min_reads(
                track, self.config.final_min_reads
            )
            result = vote(plates, self.config.max_alternatives) if enough else None
            if result is None:
                # Never sent: the hotlist service would refuse it (plate event contract, anpr.domain.plate_events).
                metrics.PASSES_DISCARDED.labels("not_a_plate").inc()
                return []
        return [self._emit(track, result, Stage.FINAL)]

    def _emit(self, track: _Track, result: Vote, stage: Stage) -> PassEvent:
        track.revision += 1
        track.emitted_text = result.text
        best = _best_observation(track)
        return PassEvent(
            event_id=track.event_id,
            revision=track.revision,
            stage=stage,
            camera_id=track.camera_id,
            text=result.text,
            raw_text=best.read.text,
            confidence=result.confidence,
            character_confidences=result.character_confidences,
            alternatives=result.alternatives,
            best_frame_id=best.frame_id,
            best_box=best.read.box,
            best_crop=best.read.crop,
            first_seen=track.observations[0].time,
            last_seen=track.last.time,
            frame_count=track.frame_count,
            gps=best.gps,
            direction=_direction(track),
            model_version=track.model_version,
            hidden_characters=result.hidden_characters,
        )


def _too_far_for_a_crop(reference: str, text: str, limit: int) -> bool:
    """Whether a crop's text is more than ``limit`` characters from its pass's (an unread one decides nothing)."""
    return bool(reference and text) and edit_distance(reference, text) > limit


def _vote_text(track: _Track) -> str:
    result = vote([o.read for o in track.observations[-5:]])
    return result.text if result else ""


def _best_observation(track: _Track) -> _Observation:
    return max(track.observations, key=_shown_first)


def _shown_first(observation: _Observation) -> tuple[bool, bool, bool, float, float]:
    # The event shows the best observation's crop: prefer observations with a crop (what an officer looks at), then
    # whole reads, then the most confident, then the largest plate.
    read = observation.read
    return read.crop is not None, bool(read.text), not read.hidden_characters, read.confidence, read.box.area


def _direction(track: _Track) -> Direction:
    if len(track.observations) < 2:
        return Direction.UNKNOWN
    first, last = track.observations[0].read.box.area, track.last.read.box.area
    if first <= 0:
        return Direction.UNKNOWN
    ratio = last / first
    if ratio > 1.2:
        return Direction.APPROACHING
    if ratio < 1 / 1.2:
        return Direction.RECEDING
    return Direction.STATIONARY


def _event_id(frame: FrameReads, read: PlateRead) -> str:
    # Camera + first frame + where in it the plate was: unique per pass (two plates in one frame differ by box)
    # and identical when the same frames are replayed, so the hotlist service stores a replay as a duplicate.
    where = f"{round(read.box.x)}x{round(read.box.y)}"
    key = f"{frame.camera_id}\x1f{frame.frame_id}\x1f{round(frame.capture_time, 6)}\x1f{where}"
    return str(uuid.uuid5(EVENT_NAMESPACE, key))
