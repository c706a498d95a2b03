"""GPS tracks sent with uploaded recordings: parsed from GPX (gpxpy) or NMEA (pynmea2), interpolated in time.

A track is a list of timed fixes in time order. :meth:`GpsTrack.at` gives the position at any time within the
track, interpolated linearly between the two fixes around it (heading and speed from the nearer fix); outside the
track it gives None rather than guessing, so reads before the receiver's first fix carry no position.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from datetime import UTC, datetime

import gpxpy
import gpxpy.gpx
import pynmea2  # type: ignore[import-untyped]

from anpr.ingest.tracking.model import Gps

KNOTS_TO_METRES_PER_SECOND = 0.514444
# A gap this long between fixes is a receiver outage: no position is made up across it.
MAX_GAP_SECONDS = 60.0
MAX_TRACK_CHARS = 8 * 1024 * 1024


class BadTrack(ValueError):
    """The GPS track cannot be used; the message says why (shown to the uploader)."""


@dataclass(frozen=True)
class TimedFix:
    """A fix and when it was taken (seconds since the epoch)."""

    time: float
    gps: Gps


class GpsTrack:
    """Timed fixes, sorted by time."""

    def __init__(self, fixes: list[TimedFix]) -> None:
        self.fixes = sorted(fixes, key=lambda fix: fix.time)
        self._times = [fix.time for fix in self.fixes]

    def at(self, when: float) -> Gps | None:
        """The interpolated position at ``when``; None outside the track or across a gap."""
        if not self.fixes or when < self._times[0] or when > self._times[-1]:
            return None
        index = bisect.bisect_left(self._times, when)
        after = self.fixes[index]
        if after.time == when or index == 0:
            return after.gps
        before = self.fixes[index - 1]
        span = after.time - before.time
        if span > MAX_GAP_SECONDS:
            return None
        share = (when - before.time) / span
        nearer = before.gps if share < 0.5 else after.gps
        return Gps(
            latitude=before.gps.latitude + (after.gps.latitude - before.gps.latitude) * share,
            longitude=before.gps.longitude + (after.gps.longitude - before.gps.longitude) * share,
            accuracy_meters=nearer.accuracy_meters,
            heading_degrees=nearer.heading_degrees,
            speed_meters_per_second=nearer.speed_meters_per_second,
        )


def _checked(latitude: float, longitude: float, where: str) -> Gps:
    if not (math.isfinite(latitude) and math.isfinite(longitude)):
        raise BadTrack(f"{where}: position is not a number")
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        raise BadTrack(f"{where}: position {latitude}, {longitude} is outside the globe")
    return Gps(latitude, longitude)


def _epoch(moment: datetime) -> float:
    return (moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)).timestamp()


def parse_gpx(text: str) -> GpsTrack:
    """The track of a GPX document (track points, else route points, with times)."""
    try:
        document = gpxpy.parse(text)
    except (gpxpy.gpx.GPXException, ValueError) as exc:
        raise BadTrack(f"not a valid GPX document: {exc}") from None
    points: list[gpxpy.gpx.GPXTrackPoint | gpxpy.gpx.GPXRoutePoint] = [
        point for track in document.tracks for segment in track.segments for point in segment.points
    ]
    points = points or [point for route in document.routes for point in route.points]
    fixes = []
    for number, point in enumerate(points, 1):
        if point.time is None:
            raise BadTrack(f"GPX point {number} has no time")
        gps = _checked(point.latitude, point.longitude, f"GPX point {number}")
        fixes.append(TimedFix(_epoch(point.time), gps))
    if not fixes:
        raise BadTrack("the GPX document has no track points")
    return GpsTrack(fixes)


def parse_nmea(text: str) -> GpsTrack:
    """The track of NMEA 0183 text: every valid RMC sentence (other sentences are skipped)."""
    fixes = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        try:
            sentence = pynmea2.parse(line)
        except (pynmea2.ParseError, ValueError, AttributeError, TypeError) as exc:
            raise BadTrack(f"NMEA line {number} is not a valid sentence: {exc}") from None
        if not isinstance(sentence, pynmea2.types.talker.RMC) or sentence.status != "A":
            continue
        try:
            moment = sentence.datetime
        except (ValueError, TypeError, AttributeError):
            moment = None
        if moment is None:
            raise BadTrack(f"NMEA line {number}: RMC sentence without date and time")
        gps = _checked(float(sentence.latitude), float(sentence.longitude), f"NMEA line {number}")
        speed = float(sentence.spd_over_grnd) * KNOTS_TO_METRES_PER_SECOND if sentence.spd_over_grnd else None
        heading = float(sentence.true_course) % 360 if sentence.true_course not in (None, "") else None
        fixes.append(
            TimedFix(
                _epoch(moment),
                Gps(gps.latitude, gps.longitude, heading_degrees=heading, speed_meters_per_second=speed),
            )
        )
    if not fixes:
        raise BadTrack("the NMEA text has no valid RMC sentence (RMC carries the date and time)")
    return GpsTrack(fixes)
