"""The ``anpr.ingest.v1.IngestService`` servicer: thin handlers over the registry, intake, sources and events.

Handlers raise domain exceptions (:mod:`anpr.runtime.errors`); the runtime's error boundary maps them to status
codes. Authentication and roles are checked before a handler runs (see :mod:`anpr.ingest.access`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import grpc.aio

from anpr.api.ingest.v1 import frame_pb2, ingest_service_pb2, ingest_service_pb2_grpc
from anpr.ingest import audit
from anpr.ingest.cameras import CameraRepository, check_camera_id
from anpr.ingest.convert import RECORDING_FRAME_PREFIX, dead_letter_message
from anpr.ingest.dead_letters import DeadLetters
from anpr.ingest.directory import CameraDirectory
from anpr.ingest.draining import StreamDrain
from anpr.ingest.event_store import EventStore
from anpr.ingest.intake import FrameIntake
from anpr.ingest.paging import decode_token, encode_token, page_size
from anpr.ingest.recordings import RecordingStore, parse_track, sample
from anpr.ingest.source_policy import SourcePolicy
from anpr.ingest.sources import SourceManager
from anpr.ingest.sources import validate as validate_source
from anpr.runtime.auth import Role
from anpr.runtime.context import current_principal
from anpr.runtime.errors import (
    Aborted,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unavailable,
)

Context = grpc.aio.ServicerContext[Any, Any]

# The label that binds a camera to the one client identity (a camera or its edge agent) allowed to send its
# frames. Deny by default: a `camera` token may submit only for cameras whose label names it; a camera without the
# label takes frames only from `frame-relay` clients (explicitly trusted gateways) and its own pulled sources.
PRINCIPAL_LABEL = "principal"


class IngestServicer(ingest_service_pb2_grpc.IngestServiceServicer):
    """Implements every IngestService RPC."""

    def __init__(
        self,
        cameras: CameraRepository,
        directory: CameraDirectory,
        intake: FrameIntake,
        sources: SourceManager,
        events: EventStore,
        drain: StreamDrain,
        dead_letters: DeadLetters | None = None,
        source_policy: SourcePolicy | None = None,
        recordings: RecordingStore | None = None,
    ) -> None:
        self._recordings = recordings
        # No policy given (a test's servicer): nothing may be pulled.
        self._source_policy = source_policy or SourcePolicy((), (), (), None)
        self._dead_letters = dead_letters
        self._drain = drain
        self._cameras = cameras
        self._directory = directory
        self._intake = intake
        self._sources = sources
        self._events = events

    async def RegisterCamera(
        self, request: ingest_service_pb2.RegisterCameraRequest, context: Context
    ) -> ingest_service_pb2.RegisterCameraResponse:
        camera, created = await self._cameras.register(request.camera)
        self._directory.invalidate(camera.camera_id)
        return ingest_service_pb2.RegisterCameraResponse(camera=camera, created=created)

    async def GetCamera(
        self, request: ingest_service_pb2.GetCameraRequest, context: Context
    ) -> ingest_service_pb2.GetCameraResponse:
        camera = await self._cameras.get(request.camera_id)
        return ingest_service_pb2.GetCameraResponse(camera=self._directory.decorate(camera))

    async def ListCameras(
        self, request: ingest_service_pb2.ListCamerasRequest, context: Context
    ) -> ingest_service_pb2.ListCamerasResponse:
        cameras, token = await self._cameras.list(
            request.page.page_size, request.page.page_token, request.kinds, request.owner_unit, request.include_disabled
        )
        response = ingest_service_pb2.ListCamerasResponse(cameras=[self._directory.decorate(c) for c in cameras])
        response.page.next_page_token = token
        return response

    async def UpdateCamera(
        self, request: ingest_service_pb2.UpdateCameraRequest, context: Context
    ) -> ingest_service_pb2.UpdateCameraResponse:
        camera = await self._cameras.update(request.camera, request.update_mask)
        self._intake.forget_camera(camera.camera_id)
        return ingest_service_pb2.UpdateCameraResponse(camera=self._directory.decorate(camera))

    async def DeleteCamera(
        self, request: ingest_service_pb2.DeleteCameraRequest, context: Context
    ) -> ingest_service_pb2.DeleteCameraResponse:
        removed = await self._sources.remove_for_camera(check_camera_id(request.camera_id))
        await self._cameras.delete(request.camera_id)
        self._intake.forget_camera(request.camera_id)
        return ingest_service_pb2.DeleteCameraResponse(removed_source_count=removed)

    async def _submit(self, frame: frame_pb2.Frame, transport: str, wait: bool) -> frame_pb2.FrameAck:
        refusal = await self._check_caller(frame)
        if refusal is not None:
            return refusal
        return await self._intake.submit(frame, transport, wait)

    async def _check_caller(self, frame: frame_pb2.Frame) -> frame_pb2.FrameAck | None:
        """A refusal when the caller may not submit for the frame's camera, else None (deny by default)."""
        if frame.frame_id.startswith(RECORDING_FRAME_PREFIX):
            # Only frames sampled from an uploaded recording are named so: events would point at footage.
            return frame_pb2.FrameAck(
                camera_id=frame.camera_id,
                frame_id=frame.frame_id,
                status=frame_pb2.FRAME_STATUS_REJECTED,
                reason=frame_pb2.FRAME_REJECT_REASON_INVALID_FRAME,
                message=f"frame ids starting with {RECORDING_FRAME_PREFIX!r} are reserved for uploaded recordings",
            )
        principal = current_principal()
        if principal is None:
            return None  # pulled sources submit in-process, outside any call
        if Role.FRAME_RELAY in principal.roles or not frame.camera_id:
            return None  # a frame without a camera id is refused by intake as INVALID_ARGUMENT
        camera = await self._directory.get(frame.camera_id)
        # An unknown camera is refused the same way, so a camera token cannot probe which cameras exist.
        if camera is not None and camera.labels.get(PRINCIPAL_LABEL) == principal.identity:
            return None
        return frame_pb2.FrameAck(
            camera_id=frame.camera_id,
            frame_id=frame.frame_id,
            status=frame_pb2.FRAME_STATUS_REJECTED,
            reason=frame_pb2.FRAME_REJECT_REASON_PERMISSION_DENIED,
            message=f"{principal.identity} may not submit frames for camera {frame.camera_id}",
        )

    async def SubmitFrame(
        self, request: ingest_service_pb2.SubmitFrameRequest, context: Context
    ) -> ingest_service_pb2.SubmitFrameResponse:
        self._drain.check(request.frame.camera_id)
        ack = await self._submit(request.frame, "unary", wait=True)
        if ack.status in (frame_pb2.FRAME_STATUS_ACCEPTED, frame_pb2.FRAME_STATUS_DUPLICATE):
            return ingest_service_pb2.SubmitFrameResponse(ack=ack)
        if ack.status == frame_pb2.FRAME_STATUS_THROTTLED:
            raise ResourceExhausted(ack.message)
        if ack.reason == frame_pb2.FRAME_REJECT_REASON_UNKNOWN_CAMERA:
            raise NotFound(ack.message)
        if ack.reason == frame_pb2.FRAME_REJECT_REASON_CAMERA_DISABLED:
            raise FailedPrecondition(ack.message)
        if ack.reason == frame_pb2.FRAME_REJECT_REASON_PERMISSION_DENIED:
            raise PermissionDenied(ack.message)
        raise InvalidArgument(ack.message)

    async def PushFrames(
        self, request_iterator: AsyncIterator[ingest_service_pb2.PushFramesRequest], context: Context
    ) -> AsyncIterator[ingest_service_pb2.PushFramesResponse]:
        # Flow control: the next frame is read only after this one is acknowledged, and acknowledging waits for
        # room in the bounded pipeline queue; meanwhile HTTP/2 flow control stops the sender. Memory per stream
        # is one frame plus the transport's window, whatever the camera's speed.
        camera_id = ""
        requests = aiter(request_iterator)
        with self._drain.stream():
            while (request := await self._drain.next_request(requests, camera_id)) is not None:
                camera_id = request.frame.camera_id or camera_id
                self._drain.check(camera_id)
                ack = await self._submit(request.frame, "stream", wait=True)
                yield ingest_service_pb2.PushFramesResponse(ack=ack)

    # -- uploaded recordings ------------------------------------------------------------------------------------

    def _recording_store(self) -> RecordingStore:
        if self._recordings is None:
            raise Unavailable("recording uploads are not enabled on this replica")
        return self._recordings

    async def _check_uploader(self, camera_id: str) -> None:
        """PermissionDenied unless the caller may send frames for the camera (as for PushFrames)."""
        check_camera_id(camera_id)
        refusal = await self._check_caller(frame_pb2.Frame(camera_id=camera_id))
        if refusal is not None:
            raise PermissionDenied(refusal.message.replace("submit frames", "upload recordings"))

    async def UploadRecording(
        self, request_iterator: AsyncIterator[ingest_service_pb2.UploadRecordingRequest], context: Context
    ) -> ingest_service_pb2.UploadRecordingResponse:
        store = self._recording_store()
        requests = aiter(request_iterator)
        first = await anext(requests, None)
        if first is None or first.WhichOneof("part") != "header":
            raise InvalidArgument("the first message of UploadRecording must be the header")
        header = first.header
        await self._check_uploader(header.camera_id)
        camera = await self._directory.get(header.camera_id)
        if camera is None:
            raise NotFound(f"camera {header.camera_id} is not registered")
        if camera.disabled:
            raise FailedPrecondition(f"camera {header.camera_id} is disabled")
        if not header.HasField("start_time"):
            raise InvalidArgument("header.start_time is required (when the recording started)")
        start = header.start_time.ToNanoseconds() / 1e9
        store.check_start(start)
        track = parse_track(header)
        recording_id, staged = await store.begin(header)
        store.hold(staged)
        try:
            async for request in requests:
                if request.WhichOneof("part") != "chunk":
                    raise InvalidArgument("only the first message of UploadRecording may be a header")
                await store.append(staged, request.chunk)
        finally:
            store.release(staged)
        if staged.received < staged.total_bytes:
            if not header.upload_id:
                await store.discard(staged)
                raise Aborted(
                    f"the stream ended after {staged.received} of {staged.total_bytes} bytes; without an upload_id "
                    "the upload cannot be resumed: send it again"
                )
            raise Aborted(
                f"the stream ended after {staged.received} of {staged.total_bytes} bytes; resume with upload_id "
                f"{recording_id} and offset {staged.received}"
            )
        try:
            result = await sample(
                staged.path,
                header.camera_id,
                recording_id,
                start,
                track,
                store.sample_fps,
                lambda frame: self._intake.submit(frame, "upload"),
            )
        except InvalidArgument:
            await store.discard(staged)  # not a video: resuming cannot help
            raise
        await store.discard(staged)
        return ingest_service_pb2.UploadRecordingResponse(
            recording_id=recording_id,
            bytes_received=staged.received,
            frames_sampled=result.sampled,
            frames_rejected=result.rejected,
            duration_ms=result.duration_ms,
        )

    async def GetUploadStatus(
        self, request: ingest_service_pb2.GetUploadStatusRequest, context: Context
    ) -> ingest_service_pb2.GetUploadStatusResponse:
        store = self._recording_store()
        await self._check_uploader(request.camera_id)
        received, total = await store.status(request.camera_id, request.upload_id)
        return ingest_service_pb2.GetUploadStatusResponse(bytes_received=received, total_bytes=total)

    async def AddSource(
        self, request: ingest_service_pb2.AddSourceRequest, context: Context
    ) -> ingest_service_pb2.AddSourceResponse:
        if await self._directory.get(request.source.camera_id) is None and request.source.camera_id:
            raise FailedPrecondition(f"camera {request.source.camera_id} is not registered")
        validate_source(request.source)
        self._source_policy.check(request.source)
        return ingest_service_pb2.AddSourceResponse(source=await self._sources.add(request.source))

    async def RemoveSource(
        self, request: ingest_service_pb2.RemoveSourceRequest, context: Context
    ) -> ingest_service_pb2.RemoveSourceResponse:
        return ingest_service_pb2.RemoveSourceResponse(source=await self._sources.remove(request.source_id))

    async def ListSources(
        self, request: ingest_service_pb2.ListSourcesRequest, context: Context
    ) -> ingest_service_pb2.ListSourcesResponse:
        sources, token = await self._sources.list(
            request.page.page_size, request.page.page_token, request.camera_id, request.states
        )
        response = ingest_service_pb2.ListSourcesResponse(sources=sources)
        response.page.next_page_token = token
        return response

    async def GetPlateEvents(
        self, request: ingest_service_pb2.GetPlateEventsRequest, context: Context
    ) -> ingest_service_pb2.GetPlateEventsResponse:
        records, token, audit_id = await self._events.list(
            request.page.page_size,
            request.page.page_token,
            request.camera_ids,
            request.time_range if request.HasField("time_range") else None,
            request.plate,
            request.delivery_states,
            request.include_plate_crops,
            request.purpose,
            request.case_reference,
        )
        response = ingest_service_pb2.GetPlateEventsResponse(events=records, audit_id=str(audit_id))
        response.page.next_page_token = token
        return response

    # -- dead letters ---------------------------------------------------------------------------------------------

    def _dead_letter_store(self) -> DeadLetters:
        if self._dead_letters is None:
            raise Unavailable("dead letters are not available on this replica")
        return self._dead_letters

    async def ListDeadLetters(
        self, request: ingest_service_pb2.ListDeadLettersRequest, context: Context
    ) -> ingest_service_pb2.ListDeadLettersResponse:
        store = self._dead_letter_store()
        filters = [request.include_plate_crops]
        after = decode_token(request.page.page_token, filters)
        if after is not None and not isinstance(after, int):
            raise InvalidArgument("page_token is malformed")
        size = page_size(request.page.page_size)
        # Dead letters are stored plate reads: the lookup is purpose-bound and audited like GetPlateEvents.
        audit_id = await self._events.audit_lookup(
            audit.DEAD_LETTERS_READ,
            request.purpose,
            request.case_reference,
            {"after": after or 0, "page_size": size, "include_plate_crops": request.include_plate_crops},
        )
        letters = await store.page(after or 0, size + 1)
        response = ingest_service_pb2.ListDeadLettersResponse(
            dead_letters=[dead_letter_message(letter, request.include_plate_crops) for letter in letters[:size]],
            audit_id=str(audit_id),
        )
        if len(letters) > size:
            response.page.next_page_token = encode_token(letters[size - 1].dead_letter_id, filters)
        response.page.total_size = await store.count()
        return response

    async def ReplayDeadLetters(
        self, request: ingest_service_pb2.ReplayDeadLettersRequest, context: Context
    ) -> ingest_service_pb2.ReplayDeadLettersResponse:
        replayed = await self._dead_letter_store().replay(_dead_letter_ids(request.dead_letter_ids, request.all))
        return ingest_service_pb2.ReplayDeadLettersResponse(replayed_count=replayed)

    async def PurgeDeadLetters(
        self, request: ingest_service_pb2.PurgeDeadLettersRequest, context: Context
    ) -> ingest_service_pb2.PurgeDeadLettersResponse:
        purged = await self._dead_letter_store().purge(_dead_letter_ids(request.dead_letter_ids, request.all))
        return ingest_service_pb2.PurgeDeadLettersResponse(purged_count=purged)


MAX_DEAD_LETTER_IDS = 1000


def _dead_letter_ids(ids: Sequence[int], everything: bool) -> list[int] | None:
    """The ids a replay or purge names (None: all); exactly one of the two must be given."""
    if everything == bool(ids):
        raise InvalidArgument("give either dead_letter_ids or all, not both or neither")
    if len(ids) > MAX_DEAD_LETTER_IDS:
        raise InvalidArgument(f"at most {MAX_DEAD_LETTER_IDS} dead_letter_ids per call; use all for everything")
    return None if everything else list(ids)
