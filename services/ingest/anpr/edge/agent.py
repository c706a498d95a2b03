"""The edge agent assembled: buffer, GPS, camera loop and uplink, started and stopped together."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import grpc
import grpc.aio

from anpr.edge.buffer import FrameBuffer
from anpr.edge.camera import CameraLoop
from anpr.edge.gps import GpsState, follow
from anpr.edge.settings import EdgeSettings
from anpr.edge.uplink import Uplink
from anpr.ingest.channels import service_config, token_metadata
from anpr.runtime.tls import open_channel

log = logging.getLogger(__name__)


def open_ingest_channel(settings: EdgeSettings) -> grpc.aio.Channel:
    """The channel to ingest: TLS (mutual with a client certificate) that follows its files, or plaintext."""
    options = [
        ("grpc.service_config", service_config("anpr.ingest.v1.IngestService")),
        ("grpc.keepalive_time_ms", 20_000),  # notice a dead mobile link quickly
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 1),
        # gRPC's own reconnection backoff (1 s growing to 120 s by default) would keep a returning link idle for
        # minutes; follow the agent's settings instead. Not grpc.min_reconnect_backoff_ms: gRPC core uses it as the
        # minimum time a connection attempt may take (grpc/grpc#12830), and a TLS handshake over a mobile link can
        # take longer than the first backoff.
        ("grpc.initial_reconnect_backoff_ms", int(settings.reconnect_initial_seconds * 1000)),
        ("grpc.max_reconnect_backoff_ms", int(settings.reconnect_max_seconds * 1000)),
    ]
    return open_channel(settings.ingest_target, settings.tls, options)


class EdgeAgent:
    """Runs the agent's tasks; :meth:`start` then :meth:`stop` (safe to call twice)."""

    def __init__(self, settings: EdgeSettings) -> None:
        self.settings = settings
        self.buffer = FrameBuffer(settings.buffer_path, settings.buffer_max_bytes)
        self.gps = GpsState(settings.gps_max_age_seconds)
        self.camera = CameraLoop(
            settings.camera_id,
            settings.video_source,
            self.buffer,
            self.gps,
            target_fps=settings.target_fps,
            jpeg_quality=settings.jpeg_quality,
            loop_video=settings.loop_video,
        )
        self._channel: grpc.aio.Channel | None = None
        self.uplink: Uplink | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Open the buffer and start capturing, GPS and the uplink."""
        await self.buffer.open()
        self._channel = open_ingest_channel(self.settings)
        self.uplink = Uplink(
            self._channel,
            token_metadata(self.settings.token_file),
            self.buffer,
            window=self.settings.push_window,
            backoff_initial=self.settings.reconnect_initial_seconds,
            backoff_max=self.settings.reconnect_max_seconds,
        )
        self._tasks = [
            asyncio.create_task(self.camera.run(), name="edge-camera"),
            asyncio.create_task(self.uplink.run(), name="edge-uplink"),
        ]
        if self.settings.gps_source:
            self._tasks.append(asyncio.create_task(follow(self.settings.gps_source, self.gps), name="edge-gps"))
        log.info("edge agent running", extra={"camera_id": self.settings.camera_id})

    async def stop(self) -> None:
        """Stop every task; frames not yet acknowledged stay in the buffer for the next start."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        if self._channel is not None:
            # Closing the channel ends a stream stuck on an unreachable ingest, which cancellation alone may not.
            channel, self._channel = self._channel, None
            await channel.close(None)
        if tasks:
            await asyncio.wait(tasks, timeout=5.0)
        with contextlib.suppress(RuntimeError):  # never opened, or closed already
            await self.buffer.close()
