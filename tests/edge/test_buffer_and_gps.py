"""Edge agent parts: the capped disk buffer (oldest evicted, counted, persistent) and GPS parsing."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pynmea2  # type: ignore[import-untyped]
import pytest

from anpr.edge.buffer import FrameBuffer
from anpr.edge.gps import GpsState, apply_gpsd, apply_nmea, follow


async def test_buffer_evicts_the_oldest_beyond_its_cap_and_survives_a_restart(tmp_path: Path) -> None:
    buffer = FrameBuffer(tmp_path / "buffer.sqlite3", max_bytes=1000)
    await buffer.open()
    for index in range(6):
        await buffer.append(bytes([index]) * 300)
    assert buffer.evicted == 3
    assert buffer.frames == 3
    kept = await buffer.after(0, 10)
    assert [entry.payload[0] for entry in kept] == [3, 4, 5]  # the newest frames survive
    await buffer.remove([kept[0].seq])
    await buffer.close()

    reopened = FrameBuffer(tmp_path / "buffer.sqlite3", max_bytes=1000)
    await reopened.open()
    assert reopened.frames == 2
    assert [e.payload[0] for e in await reopened.after(0, 10)] == [4, 5]
    with pytest.raises(ValueError, match="cannot fit"):
        await reopened.append(b"x" * 2000)
    await reopened.close()


def rmc(lat: str, lat_dir: str, lon: str, lon_dir: str, knots: str, course: str, status: str = "A") -> str:
    fields = ("120000.00", status, lat, lat_dir, lon, lon_dir, knots, course, "251125", "", "", "A")
    return str(pynmea2.RMC("GP", "RMC", fields))


def gga(lat: str, lat_dir: str, lon: str, lon_dir: str, quality: str, hdop: str) -> str:
    fields = ("120000.00", lat, lat_dir, lon, lon_dir, quality, "08", hdop, "15.0", "M", "32.0", "M", "", "")
    return str(pynmea2.GGA("GP", "GGA", fields))


def test_nmea_rmc_and_gga_make_a_fix() -> None:
    fix = apply_nmea(rmc("3355.2000", "S", "01825.2000", "E", "20.0", "90.0"), None)
    assert fix is not None
    assert fix.latitude == pytest.approx(-33.92)
    assert fix.longitude == pytest.approx(18.42)
    assert fix.speed_meters_per_second == pytest.approx(10.289, abs=0.01)
    assert fix.heading_degrees == 90.0
    fix = apply_nmea(gga("3355.2000", "S", "01825.2000", "E", "1", "0.8"), fix)
    assert fix is not None
    assert fix.accuracy_meters == pytest.approx(4.0)
    assert fix.heading_degrees == 90.0  # carried over from RMC
    assert apply_nmea(rmc("3355.2000", "S", "01825.2000", "E", "0", "0", status="V"), None) is None
    assert apply_nmea("$GPRMC,garbage*00", None) is None


def test_gpsd_tpv_makes_a_fix() -> None:
    report = {"class": "TPV", "mode": 3, "lat": -33.9, "lon": 18.4, "track": 181.5, "speed": 12.0, "eph": 3.2}
    fix = apply_gpsd(json.dumps(report), None)
    assert fix is not None
    assert (fix.latitude, fix.heading_degrees, fix.speed_meters_per_second, fix.accuracy_meters) == (
        -33.9,
        181.5,
        12.0,
        3.2,
    )
    assert apply_gpsd(json.dumps({"class": "TPV", "mode": 1}), None) is None
    assert apply_gpsd(json.dumps({"class": "SKY"}), None) is None


async def test_follow_gpsd_over_tcp() -> None:
    async def gpsd(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert (await reader.readline()).startswith(b"?WATCH=")
        writer.write(b'{"class":"VERSION"}\n{"class":"TPV","mode":2,"lat":-34.0,"lon":18.5}\n')
        await writer.drain()
        await asyncio.sleep(5)

    server = await asyncio.start_server(gpsd, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    state = GpsState()
    task = asyncio.create_task(follow(f"gpsd://127.0.0.1:{port}", state))
    try:
        async with asyncio.timeout(5):
            while state.current() is None:  # noqa: ASYNC110  (the fix arrives over TCP)
                await asyncio.sleep(0.02)
        fix = state.current()
        assert fix is not None
        assert (fix.latitude, fix.longitude) == (-34.0, 18.5)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        server.close()
