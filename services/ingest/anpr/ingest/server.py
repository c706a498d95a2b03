"""Process entry point of the ingest service: build dependencies, serve, shut down in order.

Shutdown order (the reverse of start-up): the gRPC server stops taking calls (done by the caller before this
context exits), pulled sources stop, the frame pipeline stops and ends open passes with their final events
(spooled), delivery stops, the spool closes, channels close, the database pool closes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from importlib.resources import files

import asyncpg

from anpr.api.ingest.v1 import ingest_service_pb2_grpc
from anpr.ingest.access import ACCESS_POLICY, SERVICE_NAME
from anpr.ingest.cameras import CameraRepository
from anpr.ingest.channels import open_channel, token_metadata
from anpr.ingest.dead_letters import DeadLetters
from anpr.ingest.delivery import Delivery
from anpr.ingest.directory import CameraDirectory
from anpr.ingest.draining import StreamDrain
from anpr.ingest.emitter import EventEmitter
from anpr.ingest.event_store import EventStore
from anpr.ingest.intake import FrameIntake
from anpr.ingest.journal import FrameJournal
from anpr.ingest.liveness import CameraLiveness
from anpr.ingest.pipeline import FramePipeline
from anpr.ingest.recognition import RecognitionClient
from anpr.ingest.recordings import RecordingStore
from anpr.ingest.service import IngestServicer
from anpr.ingest.settings import IngestSettings
from anpr.ingest.sources import SourceManager
from anpr.ingest.spool import Spool, SpooledEvent
from anpr.ingest.store_catch_up import StoreCatchUp
from anpr.ingest.tracking.tracker import PassTracker, TrackerConfig
from anpr.runtime import metrics as runtime_metrics
from anpr.runtime.entrypoint import run_service
from anpr.runtime.provisioning import open_service_database
from anpr.runtime.server import ServiceServer

log = logging.getLogger(__name__)

DATABASE_SCHEMA = "ingest"
RETENTION_INTERVAL_SECONDS = 3600.0
# Shares of the shutdown grace: closing camera streams at pass boundaries (the drain and server.stop take at most
# the grace together), then finishing the accepted frames, then delivering what was spooled: at most 1.4 x grace.
DRAIN_SHARE = 0.5
FINISH_SHARE = 0.3
FLUSH_SHARE = 0.1  # then delivering what was spooled


def tracker_config(settings: IngestSettings) -> TrackerConfig:
    """Tracker tuning from settings."""
    return TrackerConfig(
        timeout_seconds=settings.track_timeout_seconds,
        max_missed_frames=settings.track_max_missed_frames,
        early_min_reads=settings.early_min_reads,
        final_min_reads=settings.final_min_reads,
        crop_max_text_distance=settings.crop_max_text_distance,
        max_reads_per_pass=settings.track_max_reads,
        early_after_seconds=settings.early_after_seconds,
    )


async def _retention(store: EventStore, keep_seconds: float) -> None:
    runtime_metrics.RETENTION_INTERVAL.labels("ingest_plate_events").set(RETENTION_INTERVAL_SECONDS)
    while True:
        try:
            purged = await store.purge(keep_seconds)
            if purged:
                log.info("purged old plate events", extra={"events": purged})
            runtime_metrics.retention_succeeded("ingest_plate_events")
        except (OSError, asyncpg.PostgresError) as exc:
            runtime_metrics.RETENTION_FAILURES.labels("ingest_plate_events").inc()
            log.warning("plate event retention failed; retrying later: %s", exc)
        await asyncio.sleep(RETENTION_INTERVAL_SECONDS)


@asynccontextmanager
async def _background(
    coroutine_name: str, task: asyncio.Task[None], finish: Callable[[], Awaitable[object]] | None = None
) -> AsyncIterator[None]:
    try:
        yield
    finally:
        if finish is not None:
            await finish()
        task.cancel()
        # Bounded: a gRPC call to an unreachable peer can ignore cancellation until its channel closes (which
        # happens right after this), and shutdown must finish within the grace period.
        done, _ = await asyncio.wait({task}, timeout=2.0)
        if not done:
            log.warning("%s did not stop within 2 s; closing its channel", coroutine_name)
        elif not task.cancelled() and task.exception() is not None:
            log.error("%s had failed: %s", coroutine_name, task.exception())
        log.debug("stopped %s", coroutine_name)


@asynccontextmanager
async def build(settings: IngestSettings) -> AsyncIterator[ServiceServer]:
    """Open the service's resources and yield its server, not yet started; resources close on exit."""
    async with AsyncExitStack() as resources:
        pool = await resources.enter_async_context(
            open_service_database(settings, DATABASE_SCHEMA, files("anpr.ingest") / "migrations")
        )
        metadata = token_metadata(settings.service_token_file)

        spool = Spool(settings.spool_path)
        await spool.open()
        resources.push_async_callback(spool.close)
        journal = FrameJournal(settings.journal_path)
        await journal.open()
        resources.push_async_callback(journal.close)
        recognize_channel = open_channel(
            settings.recognize_target,
            "anpr.recognize.v1.RecognizeService",
            settings.max_message_bytes,
            client_tls=settings.client_tls(settings.recognize_tls_server_name),
        )
        resources.push_async_callback(recognize_channel.close, None)
        hotlist_channel = open_channel(
            settings.hotlist_target,
            "anpr.hotlist.v1.HotlistService",
            settings.max_message_bytes,
            client_tls=settings.client_tls(settings.hotlist_tls_server_name),
        )
        resources.push_async_callback(hotlist_channel.close, None)

        cameras = CameraRepository(pool)
        directory = CameraDirectory(cameras, online_window=settings.camera_online_window_seconds)
        store = EventStore(pool)
        # Writes to the event table that fail while PostgreSQL is down are owed, not lost (GetPlateEvents).
        catch_up = StoreCatchUp(store, spool, backoff_max_seconds=settings.store_backoff_max_seconds)

        async def delivered(batch: Sequence[SpooledEvent]) -> None:
            await catch_up.mark_delivered([(entry.event_id, entry.revision) for entry in batch])

        delivery = Delivery(
            spool,
            hotlist_channel,
            metadata,
            batch_size=settings.delivery_batch_size,
            deadline_seconds=settings.delivery_deadline_seconds,
            backoff_max_seconds=settings.delivery_backoff_max_seconds,
            on_delivered=delivered,
        )
        dead_letters = DeadLetters(
            spool, retention_seconds=settings.dead_letter_retention_seconds, wake_delivery=delivery.wake
        )
        await resources.enter_async_context(
            _background(
                "delivery",
                asyncio.create_task(delivery.run()),
                # Runs after the pipeline stopped: the final events of the passes it ended go out too.
                lambda: delivery.flush(settings.shutdown_grace_seconds * FLUSH_SHARE),
            )
        )
        await resources.enter_async_context(_background("event table catch-up", asyncio.create_task(catch_up.run())))
        await resources.enter_async_context(
            _background("dead letters", asyncio.create_task(dead_letters.run(RETENTION_INTERVAL_SECONDS)))
        )
        await resources.enter_async_context(
            _background("retention", asyncio.create_task(_retention(store, settings.event_retention_seconds)))
        )
        liveness = CameraLiveness(pool, directory, settings.camera_online_window_seconds)
        # Well inside the online window, so a camera streaming to another replica never reads as offline.
        liveness_interval = min(5.0, settings.camera_online_window_seconds / 3)
        await resources.enter_async_context(
            _background("camera liveness", asyncio.create_task(liveness.run(liveness_interval)))
        )

        recognition = RecognitionClient(
            recognize_channel,
            metadata,
            deadline_seconds=settings.recognize_deadline_seconds,
            attempts=settings.recognize_attempts,
        )
        pipeline = FramePipeline(
            recognition,
            PassTracker(tracker_config(settings)),
            EventEmitter(directory, catch_up, delivery),
            directory,
            journal,
            max_pending=settings.max_pending_frames,
            max_queue_seconds=settings.max_queue_seconds,
            journal_max_hold_seconds=settings.journal_max_hold_seconds,
            batch_size=settings.recognize_batch_size,
            batch_wait_seconds=settings.recognize_batch_wait_seconds,
            concurrency=settings.recognize_concurrency,
        )
        intake = FrameIntake(settings, directory, pipeline)
        pipeline.start(intake.replayed)
        resources.push_async_callback(pipeline.stop, settings.shutdown_grace_seconds * FINISH_SHARE)
        sources = SourceManager(pool, settings, lambda frame: intake.submit(frame, "pull"))
        await sources.start()
        resources.push_async_callback(sources.stop)

        # Without BDP probing the HTTP/2 window stays small, so a camera that sends faster than recognition keeps
        # up is pushed back by flow control instead of filling megabytes of transport buffers per stream (measured:
        # p99 capture-to-event latency 54 s -> 8 s at saturation, bench/ingest/README.md).
        server = ServiceServer("ingest", settings, ACCESS_POLICY, channel_options=[("grpc.http2.bdp_probe", 0)])
        drain = StreamDrain(pipeline.camera_busy)
        server.on_drain(lambda grace: drain.drain(grace * DRAIN_SHARE))
        server.add(
            IngestServicer(
                cameras,
                directory,
                intake,
                sources,
                store,
                drain,
                dead_letters,
                settings.source_policy,
                RecordingStore(
                    settings.recordings_path,
                    settings.recording_max_bytes,
                    settings.recording_resume_seconds,
                    sample_fps=settings.recording_sample_fps,
                    max_age_seconds=settings.max_frame_age_seconds,
                    max_skew_seconds=settings.max_clock_skew_seconds,
                ),
            ),
            ingest_service_pb2_grpc.add_IngestServiceServicer_to_server,
            SERVICE_NAME,
        )
        yield server


async def serve(settings: IngestSettings) -> None:
    """Run the ingest service until SIGTERM, then close its resources."""
    async with build(settings) as server:
        await server.run()


PURPOSE = (
    "The ingest service: registers cameras, takes frames pushed by cameras and edge agents or pulled from "
    "sources, tracks vehicles, has their plates read by recognize and sends one plate event per vehicle pass to "
    "hotlist."
    " Settings come from ANPR_INGEST_* environment variables."
)


def main(argv: Sequence[str] | None = None) -> None:
    """Console script ``anpr-ingest`` (``argv``: the command line, default ``sys.argv[1:]``; only ``--help``)."""
    run_service("ingest", IngestSettings, serve, purpose=PURPOSE, argv=argv)
