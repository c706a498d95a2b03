"""The edge agent against a real ingest server: offline buffering, delivery when the link returns, eviction."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import cv2
import grpc
import grpc.aio
import pynmea2  # type: ignore[import-untyped]

from anpr.api.ingest.v1 import camera_pb2
from anpr.edge.agent import EdgeAgent
from anpr.edge.settings import EdgeSettings
from anpr.runtime.metrics import start_metrics_endpoint
from anpr.runtime.settings import load_settings
from testkit.frames import render_plates
from testkit.ingest_env import IngestEnvironment, register, stub
from testkit.polling import wait_until
from testkit.scrape import fetch_text
from testkit.videos import write_video

FPS = 10


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def drive_video(tmp_path: Path, frames: int) -> Path:
    images = (render_plates([("CA777777", 20 + 25 * n, 300)], width=640, height=480) for n in range(frames))
    return write_video(tmp_path / "drive.avi", images, FPS)


def nmea_file(tmp_path: Path) -> Path:
    fields = ("120000.00", "A", "3355.2000", "S", "01825.2000", "E", "20.0", "45.0", "251125", "", "", "A")
    path = tmp_path / "drive.nmea"
    path.write_text(str(pynmea2.RMC("GP", "RMC", fields)) + "\r\n")
    return path


def edge_settings(tmp_path: Path, env: IngestEnvironment, port: int, **overrides: Any) -> EdgeSettings:
    token = tmp_path / "camera-token"
    token.write_text(env.tokens["camera"])
    values: dict[str, Any] = {
        "camera_id": "unit-7",
        "video_source": str(drive_video(tmp_path, 20)),
        "target_fps": FPS,
        "gps_source": str(nmea_file(tmp_path)),
        "ingest_target": f"127.0.0.1:{port}",
        "token_file": str(token),
        "buffer_path": str(tmp_path / "buffer.sqlite3"),
        "reconnect_initial_seconds": 0.1,
        "reconnect_max_seconds": 0.3,
        "metrics_port": 0,
        **overrides,
    }
    return load_settings(EdgeSettings, environ={}, **values)


def mobile_camera() -> camera_pb2.Camera:
    camera = camera_pb2.Camera(camera_id="unit-7", kind=camera_pb2.CAMERA_KIND_MOBILE, view_direction_degrees=0)
    camera.moving.SetInParent()
    camera.limits.max_frames_per_second = 100
    return camera


async def test_offline_frames_are_buffered_then_delivered_in_order(env: IngestEnvironment, tmp_path: Path) -> None:
    port = free_port()
    async with env.run_ingest(grpc_port=str(port)) as server, grpc.aio.insecure_channel(server.address) as channel:
        await register(stub(channel), env, mobile_camera())

    agent = EdgeAgent(edge_settings(tmp_path, env, port))
    await agent.start()
    try:
        # Ingest is down: the whole drive is captured into the buffer.
        await agent.camera.finished.wait()
        captured = agent.buffer.frames
        assert captured >= 18
        assert agent.uplink is not None
        assert not agent.uplink.connected.is_set()

        images_before = await env.recognized_images()
        async with env.run_ingest(grpc_port=str(port), track_timeout_seconds="0.3"):
            await wait_until(lambda: agent.buffer.frames == 0, seconds=15)
            [read] = await env.wait_for_finals(["CA777777"])
        assert await env.recognized_images() - images_before == captured  # every buffered frame, once
        final = read.event
        assert final.reading.text == "CA777777"
        assert final.frame_count == captured  # the plate is in view in every frame of the drive
        assert round(final.location.position.latitude, 2) == -33.92  # the GPS fix travelled with the frames
        assert final.location.heading_degrees == 45.0
        assert final.view_direction_degrees == 45.0  # forward-facing camera on a vehicle heading north-east
    finally:
        await agent.stop()


async def test_buffer_cap_evicts_oldest_frames_and_counts_them(env: IngestEnvironment, tmp_path: Path) -> None:
    # No ingest at all: with room for about five frames, the rest of the drive evicts the oldest ones.
    probe = render_plates([("CA777777", 20, 300)], width=640, height=480)
    frame_bytes = len(cv2.imencode(".jpg", probe, [cv2.IMWRITE_JPEG_QUALITY, 90])[1])
    agent = EdgeAgent(edge_settings(tmp_path, env, free_port(), buffer_max_bytes=frame_bytes * 5 + 2000))
    await agent.start()
    try:
        await agent.camera.finished.wait()
        assert 3 <= agent.buffer.frames <= 6
        assert agent.buffer.evicted >= 14
        kept = await agent.buffer.after(0, 100)
        assert [e.seq for e in kept] == sorted(e.seq for e in kept)
        assert kept[-1].seq >= 18  # the newest frames are the ones kept
        endpoint = start_metrics_endpoint("127.0.0.1", 0)
        try:
            scraped = await fetch_text(f"http://127.0.0.1:{endpoint.port}/metrics")
        finally:
            endpoint.close()
        assert "anpr_edge_frames_evicted_total" in scraped
        assert "anpr_edge_buffer_bytes" in scraped
    finally:
        await agent.stop()
