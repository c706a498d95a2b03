"""GPS for the edge agent: the latest fix, fed by gpsd (JSON over TCP) or by NMEA 0183 (file or serial line).

NMEA parsing uses pynmea2: RMC gives position, speed and course; GGA gives position, altitude and HDOP. A recorded
NMEA *file* is replayed at one RMC sentence per second (a receiver's usual rate) and looped, so a bench unit
behaves like a moving one; a serial device is read as it produces lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import replace
from pathlib import Path

import pynmea2  # type: ignore[import-untyped]

from anpr.edge import metrics
from anpr.ingest.tracking.model import Gps

log = logging.getLogger(__name__)

KNOTS_TO_METRES_PER_SECOND = 0.514444
# Rough conversion from HDOP to a 68 % horizontal accuracy for consumer receivers (UERE of about 5 m).
HDOP_TO_METRES = 5.0


class GpsState:
    """The most recent fix and when it arrived."""

    def __init__(self, max_age_seconds: float = 5.0) -> None:
        self._fix: Gps | None = None
        self._at = 0.0
        self._max_age = max_age_seconds

    def update(self, fix: Gps) -> None:
        """Record a new fix."""
        self._fix, self._at = fix, time.monotonic()
        metrics.GPS_FIX.set(1)

    def current(self) -> Gps | None:
        """The fix when recent enough, else None."""
        if self._fix is None or time.monotonic() - self._at > self._max_age:
            metrics.GPS_FIX.set(0)
            return None
        return self._fix


def apply_nmea(line: str, previous: Gps | None) -> Gps | None:
    """The fix after one NMEA sentence (``previous`` carried over for fields it lacks); None when unusable."""
    try:
        sentence = pynmea2.parse(line.strip())
    except (pynmea2.ParseError, ValueError, AttributeError):
        return None
    if isinstance(sentence, pynmea2.types.talker.RMC):
        if sentence.status != "A" or (sentence.latitude == 0.0 and sentence.longitude == 0.0):
            return None  # 'V' = receiver warning: no valid fix
        base = previous or Gps(sentence.latitude, sentence.longitude)
        speed = float(sentence.spd_over_grnd) * KNOTS_TO_METRES_PER_SECOND if sentence.spd_over_grnd else None
        heading = float(sentence.true_course) % 360 if sentence.true_course not in (None, "") else None
        return replace(
            base,
            latitude=sentence.latitude,
            longitude=sentence.longitude,
            speed_meters_per_second=speed,
            heading_degrees=heading,
        )
    if isinstance(sentence, pynmea2.types.talker.GGA):
        if not sentence.gps_qual or int(sentence.gps_qual) == 0:
            return None
        base = previous or Gps(sentence.latitude, sentence.longitude)
        accuracy = float(sentence.horizontal_dil) * HDOP_TO_METRES if sentence.horizontal_dil else base.accuracy_meters
        return replace(base, latitude=sentence.latitude, longitude=sentence.longitude, accuracy_meters=accuracy)
    return None


def apply_gpsd(line: str, previous: Gps | None) -> Gps | None:
    """The fix after one gpsd JSON report (only TPV reports with a 2D/3D fix count)."""
    try:
        report = json.loads(line)
    except ValueError:
        return None
    if not isinstance(report, dict) or report.get("class") != "TPV" or report.get("mode", 0) < 2:
        return None
    if "lat" not in report or "lon" not in report:
        return None
    accuracy = report.get("eph") or (max(report.get("epx", 0), report.get("epy", 0)) or None)
    return Gps(
        latitude=float(report["lat"]),
        longitude=float(report["lon"]),
        accuracy_meters=float(accuracy) if accuracy else None,
        heading_degrees=float(report["track"]) % 360 if "track" in report else None,
        speed_meters_per_second=float(report["speed"]) if "speed" in report else None,
    )


async def follow_nmea(path: Path, state: GpsState) -> None:
    """Feed ``state`` from an NMEA file (replayed, looping) or serial device (live) until cancelled."""
    is_file = await asyncio.to_thread(path.is_file)
    while True:
        try:
            with await asyncio.to_thread(path.open, "r", encoding="ascii", errors="replace") as stream:
                fix: Gps | None = None
                while True:
                    line = await asyncio.to_thread(stream.readline)
                    if not line:
                        break
                    updated = apply_nmea(line, fix)
                    if updated is None:
                        continue
                    fix = updated
                    state.update(fix)
                    if is_file and line.lstrip("$")[2:5] == "RMC":
                        await asyncio.sleep(1.0)
        except OSError as exc:
            log.warning("cannot read NMEA from %s: %s", path, exc.strerror)
        await asyncio.sleep(1.0)


async def follow_gpsd(host: str, port: int, state: GpsState) -> None:
    """Feed ``state`` from gpsd's JSON protocol until cancelled, reconnecting with backoff."""
    delay = 0.5
    while True:
        writer: asyncio.StreamWriter | None = None
        try:
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(b'?WATCH={"enable":true,"json":true}\n')
            await writer.drain()
            delay = 0.5
            fix: Gps | None = None
            while line := await reader.readline():
                updated = apply_gpsd(line.decode(errors="replace"), fix)
                if updated is not None:
                    fix = updated
                    state.update(fix)
        except OSError as exc:
            log.warning("gpsd at %s:%d unreachable: %s", host, port, exc)
        finally:
            if writer is not None:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
        await asyncio.sleep(delay)
        delay = min(delay * 2, 30.0)


async def follow(source: str, state: GpsState) -> None:
    """Run the reader ``source`` names (``gpsd://host:port`` or an NMEA path)."""
    if source.startswith("gpsd://"):
        host, _, port = source.removeprefix("gpsd://").rpartition(":")
        await follow_gpsd(host or "127.0.0.1", int(port or 2947), state)
    else:
        await follow_nmea(Path(source), state)
