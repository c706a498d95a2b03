"""Contract tests for the generated gRPC API package ``anpr.api``.

They check the shape of the three services (every RPC, its streaming mode and its request/response messages),
the conventions every message follows (UNSPECIFIED enum zero values, Timestamp/Duration fields), that key
messages survive a serialize/parse round trip, that the generated stubs and servicers talk over a real channel,
and that the import rewriting of ``tools/gen_protos.py`` covers every import form.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from types import ModuleType

import grpc
import pytest
from google.protobuf import descriptor, descriptor_pool, duration_pb2, field_mask_pb2, timestamp_pb2

from anpr.api.common.v1 import (
    geo_pb2,
    geometry_pb2,
    image_pb2,
    paging_pb2,
    plate_event_pb2,
    plate_pb2,
    time_range_pb2,
)
from anpr.api.hotlist.v1 import (
    alert_pb2,
    hotlist_pb2,
    hotlist_service_pb2,
    hotlist_service_pb2_grpc,
    import_pb2,
    match_pb2,
)
from anpr.api.ingest.v1 import camera_pb2, frame_pb2, ingest_service_pb2, ingest_service_pb2_grpc, source_pb2
from anpr.api.recognize.v1 import model_pb2, recognition_pb2, recognize_service_pb2, recognize_service_pb2_grpc

REPO_ROOT = Path(__file__).resolve().parents[2]
GENERATED_DIR = REPO_ROOT / "src" / "anpr" / "api"

UNARY = (False, False)
CLIENT_STREAM = (True, False)
SERVER_STREAM = (False, True)
BIDI = (True, True)

# service full name -> RPC name -> (client_streaming, server_streaming)
EXPECTED_SERVICES: dict[str, dict[str, tuple[bool, bool]]] = {
    "anpr.recognize.v1.RecognizeService": {
        "Recognize": UNARY,
        "StreamRecognize": BIDI,
        "GetModelInfo": UNARY,
        "ReloadModels": UNARY,
    },
    "anpr.ingest.v1.IngestService": {
        "RegisterCamera": UNARY,
        "GetCamera": UNARY,
        "ListCameras": UNARY,
        "UpdateCamera": UNARY,
        "DeleteCamera": UNARY,
        "SubmitFrame": UNARY,
        "PushFrames": BIDI,
        "AddSource": UNARY,
        "RemoveSource": UNARY,
        "ListSources": UNARY,
        "GetPlateEvents": UNARY,
        "ListDeadLetters": UNARY,
        "ReplayDeadLetters": UNARY,
        "PurgeDeadLetters": UNARY,
        "UploadRecording": CLIENT_STREAM,
        "GetUploadStatus": UNARY,
    },
    "anpr.hotlist.v1.HotlistService": {
        "CreateHotlist": UNARY,
        "GetHotlist": UNARY,
        "UpdateHotlist": UNARY,
        "DeleteHotlist": UNARY,
        "ListHotlists": UNARY,
        "UpsertEntries": UNARY,
        "DeleteEntries": UNARY,
        "ImportEntries": CLIENT_STREAM,
        "ListEntries": UNARY,
        "Match": UNARY,
        "ReportReads": UNARY,
        "SubscribeAlerts": SERVER_STREAM,
        "AcknowledgeAlert": UNARY,
        "SearchReads": UNARY,
        "GetAuditLog": UNARY,
    },
}

SERVICE_MODULES: dict[str, ModuleType] = {
    "anpr.recognize.v1.RecognizeService": recognize_service_pb2,
    "anpr.ingest.v1.IngestService": ingest_service_pb2,
    "anpr.hotlist.v1.HotlistService": hotlist_service_pb2,
}

GRPC_MODULES: dict[str, ModuleType] = {
    "anpr.recognize.v1.RecognizeService": recognize_service_pb2_grpc,
    "anpr.ingest.v1.IngestService": ingest_service_pb2_grpc,
    "anpr.hotlist.v1.HotlistService": hotlist_service_pb2_grpc,
}

PROTO_PACKAGES = ("anpr.common.v1", "anpr.recognize.v1", "anpr.ingest.v1", "anpr.hotlist.v1")


def _service(full_name: str) -> descriptor.ServiceDescriptor:
    return descriptor_pool.Default().FindServiceByName(full_name)


def _api_files() -> list[descriptor.FileDescriptor]:
    """Every proto file of the API, found through the generated modules' descriptors."""
    files = []
    for path in sorted(GENERATED_DIR.rglob("*_pb2.py")):
        relative = path.relative_to(GENERATED_DIR).with_suffix("").as_posix()
        module = importlib.import_module("anpr.api." + relative.replace("/", "."))
        files.append(module.DESCRIPTOR)
    return files


def _walk_messages(messages: list[descriptor.Descriptor]) -> Iterator[descriptor.Descriptor]:
    for message in messages:
        yield message
        yield from _walk_messages(list(message.nested_types))


def _all_messages() -> list[descriptor.Descriptor]:
    return [m for f in _api_files() for m in _walk_messages(list(f.message_types_by_name.values()))]


def _all_enums() -> list[descriptor.EnumDescriptor]:
    enums = [e for f in _api_files() for e in f.enum_types_by_name.values()]
    enums += [e for m in _all_messages() for e in m.enum_types]
    return enums


def _upper_snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).upper()


def test_generated_package_covers_every_proto_file() -> None:
    protos = sorted(p.relative_to(REPO_ROOT / "protos").as_posix() for p in (REPO_ROOT / "protos").rglob("*.proto"))
    assert sorted(f.name for f in _api_files()) == protos
    assert {f.package for f in _api_files()} == set(PROTO_PACKAGES)


@pytest.mark.parametrize("service_name", sorted(EXPECTED_SERVICES))
def test_service_rpcs_and_streaming_shape(service_name: str) -> None:
    service = _service(service_name)
    actual = {m.name: (m.client_streaming, m.server_streaming) for m in service.methods}
    assert actual == EXPECTED_SERVICES[service_name]


@pytest.mark.parametrize("service_name", sorted(EXPECTED_SERVICES))
def test_rpc_messages_are_named_after_the_rpc(service_name: str) -> None:
    service = _service(service_name)
    package = service.full_name.rsplit(".", 1)[0]
    module = SERVICE_MODULES[service_name]
    for method in service.methods:
        assert method.input_type.full_name == f"{package}.{method.name}Request"
        assert method.output_type.full_name == f"{package}.{method.name}Response"
        # The generated module exposes the classes under those names.
        assert getattr(module, f"{method.name}Request").DESCRIPTOR is method.input_type
        assert getattr(module, f"{method.name}Response").DESCRIPTOR is method.output_type


@pytest.mark.parametrize("service_name", sorted(EXPECTED_SERVICES))
def test_grpc_module_has_stub_servicer_and_registration(service_name: str) -> None:
    short = service_name.rsplit(".", 1)[1]
    module = GRPC_MODULES[service_name]
    servicer = getattr(module, f"{short}Servicer")
    for rpc in EXPECTED_SERVICES[service_name]:
        assert callable(getattr(servicer, rpc))
    assert callable(getattr(module, f"{short}Stub"))
    assert callable(getattr(module, f"add_{short}Servicer_to_server"))


def test_every_enum_has_an_unspecified_zero_value_and_prefixed_values() -> None:
    enums = _all_enums()
    assert len(enums) >= 20
    for enum in enums:
        prefix = _upper_snake(enum.name) + "_"
        zero = enum.values_by_number[0]
        assert zero.name == f"{prefix}UNSPECIFIED", enum.full_name
        for value in enum.values:
            assert value.name.startswith(prefix), value.name


def test_camera_kinds() -> None:
    assert set(camera_pb2.CameraKind.keys()) == {
        "CAMERA_KIND_UNSPECIFIED",
        "CAMERA_KIND_FIXED",
        "CAMERA_KIND_MOBILE",
        "CAMERA_KIND_DASH",
        "CAMERA_KIND_BODY",
    }


def test_time_fields_use_well_known_types() -> None:
    timestamp = timestamp_pb2.Timestamp.DESCRIPTOR.full_name
    duration = duration_pb2.Duration.DESCRIPTOR.full_name
    checked = 0
    for message in _all_messages():
        for field in message.fields:
            if field.name.endswith("_time"):
                assert field.message_type is not None, f"{message.full_name}.{field.name}"
                assert field.message_type.full_name == timestamp, f"{message.full_name}.{field.name}"
                checked += 1
            if field.message_type is not None and field.message_type.full_name == timestamp:
                assert field.name.endswith("_time"), f"{message.full_name}.{field.name}"
    assert checked >= 20
    durations = {
        f"{m.full_name}.{f.name}"
        for m in _all_messages()
        for f in m.fields
        if f.message_type is not None and f.message_type.full_name == duration
    }
    assert {
        "anpr.ingest.v1.FrameAck.retry_after",
        "anpr.hotlist.v1.Hotlist.alert_suppression_window",
        "anpr.recognize.v1.ImageResult.processing_duration",
    } <= durations


def test_update_hotlist_takes_a_field_mask() -> None:
    field = hotlist_service_pb2.UpdateHotlistRequest.DESCRIPTOR.fields_by_name["update_mask"]
    assert field.message_type is field_mask_pb2.FieldMask.DESCRIPTOR


def _timestamp(seconds: int, nanos: int = 0) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)


def _reading() -> plate_pb2.PlateReading:
    return plate_pb2.PlateReading(
        text="CA123456",
        raw_text="CA12345G",
        display_text="CA 123-456",
        confidence=0.93,
        character_confidences=[0.99, 0.98, 0.97, 0.96, 0.95, 0.94, 0.93, 0.6],
        format=plate_pb2.PlateFormat(format_id="za-wc-standard", country_code="ZA", region_code="ZA-WC", confidence=1),
        layout=plate_pb2.PLATE_LAYOUT_SINGLE_ROW,
        alternatives=[plate_pb2.AlternativeReading(text="CA123466", confidence=0.04)],
    )


def _event() -> plate_event_pb2.PlateEvent:
    return plate_event_pb2.PlateEvent(
        event_id="4d1c0a3e-2f4b-4f5e-9a55-7d2f0b2e8c11",
        revision=2,
        stage=plate_event_pb2.PLATE_EVENT_STAGE_FINAL,
        camera_id="coct-n1-km12-east",
        reading=_reading(),
        best_crop=image_pb2.EncodedImage(data=b"\xff\xd8\xff\xe0jpeg", encoding=image_pb2.IMAGE_ENCODING_JPEG),
        best_crop_box=geometry_pb2.BoundingBox(x=812.5, y=601, width=140, height=36),
        best_frame_id="frame-000123",
        first_seen_time=_timestamp(1_764_000_000),
        last_seen_time=_timestamp(1_764_000_002, 500_000_000),
        frame_count=17,
        location=geo_pb2.GpsFix(
            position=geo_pb2.GeoPoint(latitude=-33.9249, longitude=18.4241),
            accuracy_meters=4.5,
            heading_degrees=271.0,
            speed_meters_per_second=13.9,
        ),
        travel_direction=plate_event_pb2.TRAVEL_DIRECTION_APPROACHING,
        model_version="anpr-default 2025.11.0",
    )


def test_recognize_request_and_response_round_trip() -> None:
    request = recognize_service_pb2.RecognizeRequest(
        images=[
            recognition_pb2.ImageInput(
                image_id="a",
                image=image_pb2.EncodedImage(data=b"\x89PNG\r\n", encoding=image_pb2.IMAGE_ENCODING_PNG),
            ),
            recognition_pb2.ImageInput(image_id="b", image=image_pb2.EncodedImage(data=b"not an image")),
        ],
        options=recognition_pb2.RecognitionOptions(max_alternatives=3, include_plate_crops=True, format_hints=["ZA"]),
    )
    parsed = recognize_service_pb2.RecognizeRequest.FromString(request.SerializeToString())
    assert parsed == request
    assert [i.image_id for i in parsed.images] == ["a", "b"]
    assert parsed.images[1].image.encoding == image_pb2.IMAGE_ENCODING_UNSPECIFIED

    response = recognize_service_pb2.RecognizeResponse(
        results=[
            recognition_pb2.ImageResult(
                image_id="a",
                plates=[
                    recognition_pb2.PlateDetection(
                        box=geometry_pb2.BoundingBox(x=10, y=20, width=120, height=30),
                        corners=geometry_pb2.Quadrilateral(
                            top_left=geometry_pb2.Point(x=10, y=20),
                            top_right=geometry_pb2.Point(x=130, y=22),
                            bottom_right=geometry_pb2.Point(x=129, y=50),
                            bottom_left=geometry_pb2.Point(x=11, y=49),
                        ),
                        detection_confidence=0.99,
                        reading=_reading(),
                    )
                ],
                image_width=1920,
                image_height=1080,
                processing_duration=duration_pb2.Duration(nanos=21_000_000),
            ),
            recognition_pb2.ImageResult(
                image_id="b",
                error=recognition_pb2.ImageError(
                    code=grpc.StatusCode.INVALID_ARGUMENT.value[0],
                    reason=recognition_pb2.IMAGE_ERROR_REASON_NOT_AN_IMAGE,
                    message="not an image",
                ),
            ),
        ],
        model=recognition_pb2.ModelVersion(
            name="anpr-default", version="2025.11.0", execution_provider="CPUExecutionProvider"
        ),
    )
    parsed_response = recognize_service_pb2.RecognizeResponse.FromString(response.SerializeToString())
    assert parsed_response == response
    assert not parsed_response.results[0].HasField("error")
    assert parsed_response.results[1].error.code == 3
    plate = parsed_response.results[0].plates[0]
    assert plate.reading.text == "CA123456"
    assert plate.reading.raw_text == "CA12345G"
    assert len(plate.reading.character_confidences) == len(plate.reading.text)
    assert plate.reading.alternatives[0].text == "CA123466"


def test_frame_and_camera_round_trip() -> None:
    frame = frame_pb2.Frame(
        camera_id="unit-17-dash",
        frame_id="unit-17-dash/000042",
        capture_time=_timestamp(1_764_000_000, 123_000_000),
        image=image_pb2.EncodedImage(data=b"\xff\xd8jpeg", encoding=image_pb2.IMAGE_ENCODING_JPEG),
        gps=geo_pb2.GpsFix(
            position=geo_pb2.GeoPoint(latitude=-26.2041, longitude=28.0473),
            accuracy_meters=3,
            heading_degrees=90,
            speed_meters_per_second=0,
        ),
    )
    request = ingest_service_pb2.PushFramesRequest(frame=frame)
    parsed = ingest_service_pb2.PushFramesRequest.FromString(request.SerializeToString())
    assert parsed == request
    # Optional scalars keep presence: a speed of zero is distinguishable from "unknown".
    assert parsed.frame.gps.HasField("speed_meters_per_second")
    assert not parsed.frame.gps.HasField("altitude_meters")

    fixed = camera_pb2.Camera(
        camera_id="coct-n1-km12-east",
        kind=camera_pb2.CAMERA_KIND_FIXED,
        location=geo_pb2.GeoPoint(latitude=-33.9, longitude=18.5),
        view_direction_degrees=90,
        owner_unit="Metro Police District 3",
    )
    moving = camera_pb2.Camera(
        camera_id="unit-17-dash", kind=camera_pb2.CAMERA_KIND_DASH, moving=camera_pb2.MovingLocation()
    )
    assert camera_pb2.Camera.FromString(fixed.SerializeToString()).WhichOneof("placement") == "location"
    assert camera_pb2.Camera.FromString(moving.SerializeToString()).WhichOneof("placement") == "moving"

    source = source_pb2.Source(
        camera_id="coct-n1-km12-east", kind=source_pb2.SOURCE_KIND_RTSP, uri="rtsp://cam/stream", target_fps=5
    )
    assert source_pb2.Source.FromString(source.SerializeToString()) == source


def test_report_reads_and_alert_stream_round_trip() -> None:
    request = hotlist_service_pb2.ReportReadsRequest(events=[_event()])
    parsed = hotlist_service_pb2.ReportReadsRequest.FromString(request.SerializeToString())
    assert parsed == request
    assert parsed.events[0].location.heading_degrees == 271.0

    entry = hotlist_pb2.HotlistEntry(plate="CA123456", reason="stolen", action=hotlist_pb2.HOTLIST_ACTION_STOP_VEHICLE)
    hit = match_pb2.Hit(
        hotlist_name="saps-stolen-vehicles",
        priority=90,
        entry=entry,
        kind=match_pb2.MATCH_KIND_CONFUSION,
        matched_text="CA123456",
        confusion_count=1,
        score=0.9,
        meets_strictness=True,
    )
    message = hotlist_service_pb2.SubscribeAlertsResponse(
        cursor="opaque-cursor-1",
        update=hotlist_service_pb2.AlertUpdate(
            change=hotlist_service_pb2.ALERT_CHANGE_RAISED,
            alert=alert_pb2.Alert(
                alert_id="alert-1",
                hit=hit,
                event=_event(),
                raise_time=_timestamp(1_764_000_003),
                state=alert_pb2.ALERT_STATE_OPEN,
            ),
        ),
    )
    parsed_message = hotlist_service_pb2.SubscribeAlertsResponse.FromString(message.SerializeToString())
    assert parsed_message == message
    assert parsed_message.WhichOneof("payload") == "update"
    assert parsed_message.update.alert.hit.entry.WhichOneof("target") == "plate"


def test_import_and_update_requests_round_trip() -> None:
    header = hotlist_service_pb2.ImportEntriesRequest(
        header=import_pb2.ImportHeader(hotlist_name="saps-stolen-vehicles", mode=import_pb2.IMPORT_MODE_REPLACE),
        rows=[
            import_pb2.ImportRow(row_number=2, entry=hotlist_pb2.HotlistEntry(pattern="CA*456", reason="warrant")),
        ],
    )
    assert hotlist_service_pb2.ImportEntriesRequest.FromString(header.SerializeToString()) == header

    update = hotlist_service_pb2.UpdateHotlistRequest(
        hotlist=hotlist_pb2.Hotlist(name="saps-stolen-vehicles", priority=95, active=False),
        update_mask=field_mask_pb2.FieldMask(paths=["priority", "active"]),
    )
    parsed = hotlist_service_pb2.UpdateHotlistRequest.FromString(update.SerializeToString())
    assert parsed == update
    assert list(parsed.update_mask.paths) == ["priority", "active"]
    assert parsed.update_mask.IsValidForDescriptor(hotlist_pb2.Hotlist.DESCRIPTOR)

    search = hotlist_service_pb2.SearchReadsRequest(
        purpose="Investigation of hijacking",
        case_reference="CAS 123/10/2025",
        plate_pattern="CA12?456",
        time_range=time_range_pb2.TimeRange(start_time=_timestamp(1_763_000_000), end_time=_timestamp(1_764_000_000)),
        area=geo_pb2.GeoArea(
            circle=geo_pb2.GeoCircle(center=geo_pb2.GeoPoint(latitude=-33.9, longitude=18.4), radius_meters=500)
        ),
        page=paging_pb2.PageRequest(page_size=100),
    )
    parsed_search = hotlist_service_pb2.SearchReadsRequest.FromString(search.SerializeToString())
    assert parsed_search == search
    assert parsed_search.area.WhichOneof("shape") == "circle"


class _Recognizer(recognize_service_pb2_grpc.RecognizeServiceServicer):
    """Echoes image ids, so that the generated unary and stream plumbing can be exercised over a real channel."""

    def Recognize(
        self, request: recognize_service_pb2.RecognizeRequest, context: grpc.ServicerContext
    ) -> recognize_service_pb2.RecognizeResponse:
        return recognize_service_pb2.RecognizeResponse(
            results=[recognition_pb2.ImageResult(image_id=image.image_id) for image in request.images],
            model=recognition_pb2.ModelVersion(name="echo", version="0"),
        )

    def StreamRecognize(
        self,
        request_iterator: Iterator[recognize_service_pb2.StreamRecognizeRequest],
        context: grpc.ServicerContext,
    ) -> Iterator[recognize_service_pb2.StreamRecognizeResponse]:
        for request in request_iterator:
            yield recognize_service_pb2.StreamRecognizeResponse(
                result=recognition_pb2.ImageResult(image_id=request.image.image_id),
                model=recognition_pb2.ModelVersion(name="echo", version="0"),
            )

    def GetModelInfo(
        self, request: recognize_service_pb2.GetModelInfoRequest, context: grpc.ServicerContext
    ) -> recognize_service_pb2.GetModelInfoResponse:
        return recognize_service_pb2.GetModelInfoResponse(
            model=recognition_pb2.ModelVersion(name="echo", version="0"),
            limits=model_pb2.RecognitionLimits(max_images_per_request=16),
        )

    def ReloadModels(
        self, request: recognize_service_pb2.ReloadModelsRequest, context: grpc.ServicerContext
    ) -> recognize_service_pb2.ReloadModelsResponse:
        context.abort(grpc.StatusCode.FAILED_PRECONDITION, "no models to reload")


def test_generated_stubs_and_servicers_talk_over_a_real_channel() -> None:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    recognize_service_pb2_grpc.add_RecognizeServiceServicer_to_server(_Recognizer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = recognize_service_pb2_grpc.RecognizeServiceStub(channel)
            ids = [f"img-{i}" for i in range(5)]

            batch = recognize_service_pb2.RecognizeRequest(images=[recognition_pb2.ImageInput(image_id=i) for i in ids])
            assert [r.image_id for r in stub.Recognize(batch, timeout=10).results] == ids

            requests = (
                recognize_service_pb2.StreamRecognizeRequest(image=recognition_pb2.ImageInput(image_id=i)) for i in ids
            )
            replies = list(stub.StreamRecognize(requests, timeout=10))
            assert [r.result.image_id for r in replies] == ids

            info = stub.GetModelInfo(recognize_service_pb2.GetModelInfoRequest(), timeout=10)
            assert info.limits.max_images_per_request == 16

            with pytest.raises(grpc.RpcError) as raised:
                stub.ReloadModels(recognize_service_pb2.ReloadModelsRequest(force=True), timeout=10)
            assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION

        # An RPC of a service that is not registered on the server answers UNIMPLEMENTED.
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            hotlist = hotlist_service_pb2_grpc.HotlistServiceStub(channel)
            with pytest.raises(grpc.RpcError) as missing:
                hotlist.Match(hotlist_service_pb2.MatchRequest(), timeout=10)
            assert missing.value.code() == grpc.StatusCode.UNIMPLEMENTED
    finally:
        server.stop(grace=None)


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_protos", REPO_ROOT / "tools" / "gen_protos.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_import_rewriting_covers_every_form() -> None:
    rewrite = _load_generator().rewrite_imports
    source = (
        "from anpr.common.v1 import geo_pb2 as anpr_dot_common_dot_v1_dot_geo__pb2\n"
        "from anpr.hotlist.v1.hotlist_pb2 import Hotlist\n"
        "import anpr.ingest.v1.camera_pb2\n"
        "    from anpr.recognize.v1 import recognition_pb2 as _recognition_pb2\n"
        "x: anpr.ingest.v1.camera_pb2.Camera\n"
        "_builder.BuildTopDescriptorsAndMessages(DESCRIPTOR, 'anpr.common.v1.geo_pb2', _globals)\n"
        "'/anpr.hotlist.v1.HotlistService/Match'\n"
        "b'\\n\\x1banpr/common/v1/geo.proto\\x12\\x0e\\x61npr.common.v1'\n"
        "from anpr.api.common.v1 import plate_pb2\n"
    )
    expected = (
        "from anpr.api.common.v1 import geo_pb2 as anpr_dot_common_dot_v1_dot_geo__pb2\n"
        "from anpr.api.hotlist.v1.hotlist_pb2 import Hotlist\n"
        "import anpr.api.ingest.v1.camera_pb2\n"
        "    from anpr.api.recognize.v1 import recognition_pb2 as _recognition_pb2\n"
        "x: anpr.api.ingest.v1.camera_pb2.Camera\n"
        "_builder.BuildTopDescriptorsAndMessages(DESCRIPTOR, 'anpr.api.common.v1.geo_pb2', _globals)\n"
        "'/anpr.hotlist.v1.HotlistService/Match'\n"
        "b'\\n\\x1banpr/common/v1/geo.proto\\x12\\x0e\\x61npr.common.v1'\n"
        "from anpr.api.common.v1 import plate_pb2\n"
    )
    assert rewrite(source) == expected


def test_committed_generated_code_imports_only_anpr_api() -> None:
    pattern = re.compile(r"^\s*(?:from|import)\s+anpr\.(?!api\.)", re.MULTILINE)
    files = sorted([*GENERATED_DIR.rglob("*.py"), *GENERATED_DIR.rglob("*.pyi")])
    assert files
    offenders = [str(path) for path in files if pattern.search(path.read_text(encoding="utf-8"))]
    assert offenders == []
    assert hotlist_service_pb2.MatchRequest.__module__ == "anpr.api.hotlist.v1.hotlist_service_pb2"
