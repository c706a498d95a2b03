"""``anpr demo``: ``anpr up``, a simulated fleet, a demo hotlist, a live view, and measurements at the end.

The suite runs as ``anpr up --json`` in a child process (its service logs go to ``<data-dir>/demo.log``; the
latest line shows as progress while the database starts and the models load). The demo then acts as the city's
clients would, over the public gRPC API with the development tokens and client certificate: an ingest admin
registers the cameras, a hotlist admin fills the demo hotlists, each camera pushes its frames (PushFrames, with
its own token) but the body-worn camera, which records a clip and uploads it partway through (UploadRecording,
with the same camera token), an operator subscribes to alerts and acknowledges some, and the live view looks up the
demo's own (synthetic) plate events with a stated purpose.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
from google.protobuf import timestamp_pb2

from anpr.api.common.v1 import geo_pb2, image_pb2, paging_pb2, plate_event_pb2, time_range_pb2
from anpr.api.hotlist.v1 import alert_pb2, hotlist_pb2, hotlist_service_pb2, hotlist_service_pb2_grpc
from anpr.api.ingest.v1 import camera_pb2, frame_pb2, ingest_service_pb2, ingest_service_pb2_grpc
from anpr.cli.upload import upload
from anpr.demo import bodycam
from anpr.demo.fleet import DemoCamera, PlannedVehicle, StreetVideo, VehiclePass, demo_fleet
from anpr.demo.score import SeenAlert, SeenEvent, pass_of, score
from anpr.demo.view import DemoView
from anpr.runtime.tls import ClientTls, open_channel

CAMERA_IDENTITY = "dev-camera"  # the identity of the camera token `anpr up` writes
PURPOSE = "anpr demo live view: the demo's own synthetic plate events"
START_TIMEOUT_SECONDS = 300.0
PLAN_AHEAD = 8
DRAIN_SECONDS = (3.0, 12.0)  # after the last frame: at least, at most (passes end, events are delivered)
ACK_DELAY_SECONDS = 1.5
HOTLISTS = (
    ("demo-stolen-vehicles", "Demo stolen vehicles", 90, hotlist_pb2.HOTLIST_ACTION_STOP_VEHICLE),
    ("demo-traffic-fines", "Demo unpaid traffic fines", 30, hotlist_pb2.HOTLIST_ACTION_NOTIFY),
)


class DemoError(Exception):
    """The demo could not run; the message says why."""


def _stamp(seconds: float) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(round(seconds * 1e9))
    return stamp


def _seconds(stamp: timestamp_pb2.Timestamp) -> float:
    return stamp.ToNanoseconds() / 1e9


class Demo:
    """One run of the demo against a started suite."""

    def __init__(self, args: argparse.Namespace, summary: dict[str, Any], view: DemoView) -> None:
        self.args = args
        self.tokens: dict[str, str] = summary["tokens"]
        self.addresses = {name: where["grpc_address"] for name, where in summary["services"].items()}
        tls = summary.get("tls")
        self.tls = (
            ClientTls(Path(tls["ca_file"]), Path(tls["client_cert_file"]), Path(tls["client_key_file"]), None)
            if tls
            else None
        )
        self.view = view
        self.cameras = demo_fleet()
        self.videos = {
            camera.camera_id: StreetVideo(camera, args.seed * 1000 + index) for index, camera in enumerate(self.cameras)
        }
        self.passes: list[VehiclePass] = []
        self.events: dict[str, SeenEvent] = {}
        self.revisions: dict[str, int] = {}
        self.alerts: dict[str, SeenAlert] = {}
        self.started = time.time()
        self.stopping = asyncio.Event()
        self.background: set[asyncio.Task[None]] = set()

    def metadata(self, role: str) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.tokens[role]}"),)

    async def run(self) -> dict[str, Any]:
        """Set up, drive the fleet until the duration ends or a signal comes, drain, and measure."""
        async with (
            open_channel(self.addresses["ingest"], self.tls) as ingest_channel,
            open_channel(self.addresses["hotlist"], self.tls) as hotlist_channel,
        ):
            ingest: ingest_service_pb2_grpc.IngestServiceAsyncStub = ingest_service_pb2_grpc.IngestServiceStub(
                ingest_channel
            )
            hotlist: hotlist_service_pb2_grpc.HotlistServiceAsyncStub = hotlist_service_pb2_grpc.HotlistServiceStub(
                hotlist_channel
            )
            self.view.status = "registering cameras and filling the demo hotlists"
            await self.register_cameras(ingest)
            await self.create_hotlists(hotlist)
            for video in self.videos.values():
                await self.hotlist_plates(hotlist, video.plan(PLAN_AHEAD))
            alerts = asyncio.create_task(self.watch_alerts(hotlist))
            events = asyncio.create_task(self.watch_events(ingest))
            self.view.status = "fleet on the road"
            drivers = [
                asyncio.create_task(
                    self.record_and_upload(camera) if camera.records else self.drive(ingest, hotlist, camera)
                )
                for camera in self.cameras
            ]
            await self.wait_for_end()
            self.view.status = "stopping: the last vehicles finish their pass"
            self.stopping.set()
            await asyncio.gather(*drivers)
            self.view.status = "waiting for the last events and alerts"
            await self.drain()
            await self.poll_events(ingest)
            alerts.cancel()
            events.cancel()
            for task in (alerts, events, *self.background):
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        return score(self.passes, list(self.events.values()), list(self.alerts.values())).as_dict()

    async def wait_for_end(self) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        try:
            await asyncio.wait_for(stop.wait(), self.args.duration)
        except TimeoutError:
            pass
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)

    async def drain(self) -> None:
        """Wait until every complete pass has its event and every expected alert came (within bounds)."""
        least, most = DRAIN_SECONDS
        deadline = time.monotonic() + most
        await asyncio.sleep(least)
        while time.monotonic() < deadline:
            summary = score(self.passes, list(self.events.values()), list(self.alerts.values()))
            if summary.missed_passes == 0 and summary.alerts_correct >= summary.alerts_expected:
                return
            await asyncio.sleep(0.5)

    async def register_cameras(self, ingest: ingest_service_pb2_grpc.IngestServiceAsyncStub) -> None:
        for demo in self.cameras:
            camera = camera_pb2.Camera(
                camera_id=demo.camera_id,
                kind=demo.kind,  # type: ignore[arg-type]
                display_name=demo.display_name,
                owner_unit="demo",
                description="simulated by anpr demo",
                labels={"principal": CAMERA_IDENTITY, "demo": "true"},
                plate_regions=["ZA"],
                sends_plate_crops=demo.sends_crops,
            )
            if demo.moving:
                camera.moving.SetInParent()
            else:
                camera.location.CopyFrom(geo_pb2.GeoPoint(latitude=demo.latitude, longitude=demo.longitude))
            await ingest.RegisterCamera(
                ingest_service_pb2.RegisterCameraRequest(camera=camera), metadata=self.metadata("ingest-admin")
            )

    async def create_hotlists(self, hotlist: hotlist_service_pb2_grpc.HotlistServiceAsyncStub) -> None:
        for name, title, priority, action in HOTLISTS:
            request = hotlist_service_pb2.CreateHotlistRequest(
                hotlist=hotlist_pb2.Hotlist(
                    name=name,
                    display_name=title,
                    description="synthetic plates of anpr demo",
                    source="anpr demo",
                    priority=priority,
                    default_action=action,
                    active=True,
                )
            )
            try:
                await hotlist.CreateHotlist(request, metadata=self.metadata("hotlist-admin"))
            except grpc.aio.AioRpcError as error:
                if error.code() != grpc.StatusCode.ALREADY_EXISTS:  # from an earlier demo in the same data dir
                    raise

    async def hotlist_plates(
        self, hotlist: hotlist_service_pb2_grpc.HotlistServiceAsyncStub, batch: list[PlannedVehicle]
    ) -> None:
        """Put the batch's hotlisted plates on the demo lists (alternating), before those vehicles pass."""
        for index, (name, _, _, _) in enumerate(HOTLISTS):
            plates = [p.plate.label for i, p in enumerate(batch) if p.hotlisted and i % len(HOTLISTS) == index]
            if not plates:
                continue
            entries = [
                hotlist_pb2.HotlistEntry(plate=plate, reason=f"demo: synthetic {name.removeprefix('demo-')} entry")
                for plate in plates
            ]
            await hotlist.UpsertEntries(
                hotlist_service_pb2.UpsertEntriesRequest(hotlist_name=name, entries=entries),
                metadata=self.metadata("hotlist-admin"),
            )

    async def drive(
        self,
        ingest: ingest_service_pb2_grpc.IngestServiceAsyncStub,
        hotlist: hotlist_service_pb2_grpc.HotlistServiceAsyncStub,
        camera: DemoCamera,
    ) -> None:
        """Push this camera's street video at its frame rate until the demo stops (finishing the current pass)."""
        video = self.videos[camera.camera_id]
        stats = self.view.stats[camera.camera_id]
        frames = video.frames()
        period = 1.0 / self.args.fps

        async def requests() -> AsyncIterator[ingest_service_pb2.PushFramesRequest]:
            number = 0
            next_at = time.monotonic()
            current: VehiclePass | None = None
            while True:
                if len(video.planned) < PLAN_AHEAD // 2:
                    await self.hotlist_plates(hotlist, video.plan(PLAN_AHEAD))
                street = await asyncio.to_thread(next, frames)
                if street.vehicle is None and self.stopping.is_set():
                    return
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                next_at += period
                if camera.sends_crops and street.vehicle is None:
                    continue  # a gate camera sends nothing while no vehicle is at the gate
                now = time.time()
                frame = frame_pb2.Frame(
                    camera_id=camera.camera_id,
                    frame_id=f"{camera.camera_id}-{self.started:.0f}-{number}",
                    capture_time=_stamp(now),
                    image=image_pb2.EncodedImage(data=street.jpeg, encoding=image_pb2.IMAGE_ENCODING_JPEG),
                )
                if camera.moving:
                    latitude, longitude = camera.position(now - self.started)
                    stats.position = (latitude, longitude)
                    frame.gps.CopyFrom(
                        geo_pb2.GpsFix(
                            position=geo_pb2.GeoPoint(latitude=latitude, longitude=longitude),
                            accuracy_meters=5.0,
                            heading_degrees=camera.heading_degrees,
                            speed_meters_per_second=camera.speed_meters_per_second,
                            fix_time=_stamp(now),
                        )
                    )
                vehicle = street.vehicle
                if vehicle is not None:
                    if vehicle is not current:
                        current = vehicle
                        vehicle.first_capture = now
                        self.passes.append(vehicle)
                        stats.passes += 1
                    vehicle.last_capture = now
                    vehicle.frames_sent += 1
                number += 1
                yield ingest_service_pb2.PushFramesRequest(frame=frame)

        stream = ingest.PushFrames(requests(), metadata=self.metadata("camera"))
        async for reply in stream:
            if reply.ack.status == frame_pb2.FRAME_STATUS_ACCEPTED:
                stats.sent(time.monotonic())

    async def record_and_upload(self, camera: DemoCamera) -> None:
        """Record the body-worn clip from the demo's start; when it ends (or the demo stops), upload it."""
        stats = self.view.stats[camera.camera_id]
        stats.upload = "recording"
        recording = await asyncio.to_thread(
            bodycam.record, self.videos[camera.camera_id], self.args.data_dir / "recordings", self.started
        )
        while not self.stopping.is_set() and time.time() < recording.start + recording.duration:
            stats.position = camera.position(time.time() - recording.start)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), 1.0)
        stats.position = camera.position(recording.duration)
        stats.upload = "uploading"
        start_time = _stamp(recording.start)
        header = ingest_service_pb2.RecordingHeader(
            camera_id=camera.camera_id,
            start_time=start_time,
            total_bytes=recording.video.stat().st_size,
            upload_id=recording.upload_id,
            content_type="video/x-msvideo",
            gps_track_format=ingest_service_pb2.GPS_TRACK_FORMAT_GPX,
            gps_track=recording.track.read_text(encoding="utf-8"),
        )
        # The passes count from now: until the upload their frames were on the camera, not due as events.
        self.passes.extend(recording.passes)
        stats.passes += len(recording.passes)
        reply = await upload(self.addresses["ingest"], self.tokens["camera"], recording.video, header, self.tls)
        stats.frames = reply.frames_sampled
        self.view.upload(
            {
                "camera_id": camera.camera_id,
                "recording_id": reply.recording_id,
                "video": str(recording.video),
                "gps_track": str(recording.track),
                "start_time": recording.start,
                "bytes_received": reply.bytes_received,
                "frames_sampled": reply.frames_sampled,
                "frames_rejected": reply.frames_rejected,
                "duration_ms": reply.duration_ms,
                "vehicle_passes": len(recording.passes),
                "synthetic": True,
            }
        )

    async def watch_events(self, ingest: ingest_service_pb2_grpc.IngestServiceAsyncStub) -> None:
        while True:
            await self.poll_events(ingest)
            await asyncio.sleep(1.0)

    async def poll_events(self, ingest: ingest_service_pb2_grpc.IngestServiceAsyncStub) -> None:
        """Look up the demo cameras' events since the demo started; show new events and new revisions."""
        token = ""
        while True:
            reply = await ingest.GetPlateEvents(
                ingest_service_pb2.GetPlateEventsRequest(
                    page=paging_pb2.PageRequest(page_size=200, page_token=token),
                    camera_ids=[camera.camera_id for camera in self.cameras],
                    time_range=time_range_pb2.TimeRange(start_time=_stamp(self.started - 1)),
                    purpose=PURPOSE,
                ),
                metadata=self.metadata("operator"),
            )
            for record in reversed(reply.events):
                self.saw_event(record.event)
            token = reply.page.next_page_token
            if not token:
                return

    def saw_event(self, event: plate_event_pb2.PlateEvent) -> None:
        if self.revisions.get(event.event_id, -1) >= event.revision:
            return
        self.revisions[event.event_id] = event.revision
        seen = SeenEvent(
            event.event_id,
            event.camera_id,
            event.reading.text,
            _seconds(event.first_seen_time),
            _seconds(event.last_seen_time),
        )
        self.events[event.event_id] = seen
        vehicle = pass_of(self.passes, seen.camera_id, seen.first_seen, seen.last_seen)
        verdict = "correct" if vehicle is not None and vehicle.plate == seen.plate else "junk"
        location = event.location.position if event.HasField("location") else None
        recording = event.recording if event.HasField("recording") else None
        self.view.event(
            {
                "event_id": event.event_id,
                "revision": event.revision,
                "stage": plate_event_pb2.PlateEventStage.Name(event.stage).removeprefix("PLATE_EVENT_STAGE_"),
                "camera_id": event.camera_id,
                "plate": event.reading.text,
                "confidence": round(event.reading.confidence, 3),
                "first_seen": seen.first_seen,
                "last_seen": seen.last_seen,
                "frame_count": event.frame_count,
                "location": f"{location.latitude:.5f}, {location.longitude:.5f}" if location else None,
                "recording": (
                    {"recording_id": recording.recording_id, "offset_ms": recording.offset_ms} if recording else None
                ),
                "synthetic": True,
            },
            verdict,
        )

    async def watch_alerts(self, hotlist: hotlist_service_pb2_grpc.HotlistServiceAsyncStub) -> None:
        request = hotlist_service_pb2.SubscribeAlertsRequest(
            start=hotlist_service_pb2.ALERT_STREAM_START_LATEST,
            camera_ids=[camera.camera_id for camera in self.cameras],
            include_updates=True,
        )
        async for reply in hotlist.SubscribeAlerts(request, metadata=self.metadata("operator")):
            if not reply.HasField("update"):
                continue
            alert = reply.update.alert
            if reply.update.change == hotlist_service_pb2.ALERT_CHANGE_RAISED and alert.alert_id not in self.alerts:
                self.alerts[alert.alert_id] = SeenAlert(
                    alert.alert_id,
                    alert.event.camera_id,
                    alert.hit.entry.plate or alert.event.reading.text,
                    _seconds(alert.event.first_seen_time),
                    time.time(),
                )
                if len(self.alerts) % 3:  # the operator handles two alerts in three while the demo runs
                    task = asyncio.create_task(self.acknowledge(hotlist, alert.alert_id))
                    self.background.add(task)
                    task.add_done_callback(self.background.discard)
            self.view.alert(
                {
                    "alert_id": alert.alert_id,
                    "change": hotlist_service_pb2.AlertChange.Name(reply.update.change).removeprefix("ALERT_CHANGE_"),
                    "priority": alert.hit.priority,
                    "hotlist": alert.hit.hotlist_name,
                    "plate": alert.event.reading.text,
                    "hotlist_plate": alert.hit.entry.plate,
                    "camera_id": alert.event.camera_id,
                    "action": hotlist_pb2.HotlistAction.Name(alert.hit.action).removeprefix("HOTLIST_ACTION_"),
                    "state": alert_pb2.AlertState.Name(alert.state).removeprefix("ALERT_STATE_"),
                    "acknowledged_by": alert.acknowledgement.acknowledged_by or None,
                    "synthetic": True,
                }
            )

    async def acknowledge(self, hotlist: hotlist_service_pb2_grpc.HotlistServiceAsyncStub, alert_id: str) -> None:
        await asyncio.sleep(ACK_DELAY_SECONDS)
        with contextlib.suppress(grpc.aio.AioRpcError):  # the demo may be stopping; an open alert is fine
            await hotlist.AcknowledgeAlert(
                hotlist_service_pb2.AcknowledgeAlertRequest(
                    alert_id=alert_id,
                    outcome=alert_pb2.ALERT_OUTCOME_CONFIRMED,
                    note="demo operator: vehicle seen on camera, unit dispatched",
                ),
                metadata=self.metadata("operator"),
            )


async def _start_suite(args: argparse.Namespace, view: DemoView) -> tuple[asyncio.subprocess.Process, dict[str, Any]]:
    """``anpr up --json`` as a child; its logs go to a file, their latest line shows as progress."""
    args.data_dir.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "anpr.cli.main", "up", "--json", "--data-dir", str(args.data_dir)]
    if args.database_url:
        command += ["--database-url", args.database_url]
    if args.plaintext:
        command.append("--plaintext")
    process = await asyncio.create_subprocess_exec(
        *command, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    log = args.data_dir / "demo.log"
    assert process.stdout is not None
    assert process.stderr is not None
    view.log_task = asyncio.create_task(_follow_log(process.stderr, log, view))
    line = b""
    starting = "[bold]starting the suite[/] (database, recognize loading and warming up the models, hotlist, ingest)"
    with view.console.status(starting) as status:
        view.on_log = lambda text: status.update(f"{starting}\n  {text[:110]}")
        with contextlib.suppress(TimeoutError):
            line = await asyncio.wait_for(process.stdout.readline(), START_TIMEOUT_SECONDS)
        view.on_log = None
    if not line:
        await _stop_suite(process)
        raise DemoError(f"the suite did not start; its log is {log}")
    return process, json.loads(line)


async def _follow_log(stream: asyncio.StreamReader, path: Path, view: DemoView) -> None:
    with path.open("ab") as log:
        async for line in stream:
            log.write(line)
            log.flush()
            if view.on_log is not None:
                view.on_log(line.decode(errors="replace").strip())


async def _stop_suite(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 60)
        except TimeoutError:
            process.kill()
            await process.wait()


async def _demo(args: argparse.Namespace) -> int:
    view = DemoView(demo_fleet(), args.json, args.duration)
    process, summary = await _start_suite(args, view)
    try:
        if args.json:
            print(json.dumps(summary), flush=True)
        else:
            view.console.print(
                "[bold green]ANPR suite is up[/] — "
                + ", ".join(f"{name} {where['grpc_address']}" for name, where in summary["services"].items())
                + f" (logs: {args.data_dir / 'demo.log'})"
            )
        demo = Demo(args, summary, view)
        with view:
            measured = await demo.run()
        view.summary(measured)
        return 0
    finally:
        await _stop_suite(process)
        if view.log_task is not None:
            await view.log_task


def run(args: argparse.Namespace) -> int:
    """Run the demo; 0 when it ran to the end, 1 when the suite or a call failed (said plainly)."""
    try:
        return asyncio.run(_demo(args))
    except KeyboardInterrupt:
        return 130
    except grpc.aio.AioRpcError as error:
        print(f"anpr demo: {error.code().name}: {error.details()}", file=sys.stderr)
        return 1
    except Exception as exc:
        print(f"anpr demo: {exc}", file=sys.stderr)
        return 1
