"""The services the fuzzer calls: their access policies, the state seeded before fuzzing, and a standalone start.

Seeding gives generated requests something to hit (a hotlist ``l`` with a plate and a pattern entry, a camera
``cam-1``), so fuzzing reaches the code behind "found" as well as behind "not found".
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping

import grpc.aio

from anpr.api.common.v1 import geo_pb2
from anpr.api.hotlist.v1 import hotlist_pb2, hotlist_service_pb2, hotlist_service_pb2_grpc
from anpr.api.ingest.v1 import camera_pb2, ingest_service_pb2, ingest_service_pb2_grpc

SERVICES = ("hotlist", "ingest", "recognize")


def access_policy(service: str) -> dict[str, frozenset[str]]:
    """Roles allowed per method path, as the service enforces them."""
    policy = importlib.import_module(f"anpr.{service}.access").ACCESS_POLICY
    return {path: frozenset(str(role) for role in allowed) for path, allowed in policy.items()}


def _caller(policy: Mapping[str, frozenset[str]], path: str, tokens: Mapping[str, str]) -> tuple[tuple[str, str]]:
    role = sorted(policy[path])[0]
    return (("authorization", f"Bearer {tokens[role]}"),)


async def seed(service: str, channel: grpc.aio.Channel, tokens: Mapping[str, str]) -> None:
    """Create the state the fuzzer's plausible values name."""
    policy = access_policy(service)
    if service == "hotlist":
        stub = hotlist_service_pb2_grpc.HotlistServiceStub(channel)
        prefix = "/anpr.hotlist.v1.HotlistService/"
        await stub.CreateHotlist(
            hotlist_service_pb2.CreateHotlistRequest(hotlist=hotlist_pb2.Hotlist(name="l", display_name="L")),
            metadata=_caller(policy, prefix + "CreateHotlist", tokens),
        )
        await stub.UpsertEntries(
            hotlist_service_pb2.UpsertEntriesRequest(
                hotlist_name="l",
                entries=[hotlist_pb2.HotlistEntry(plate="CA123456"), hotlist_pb2.HotlistEntry(pattern="CA1*")],
            ),
            metadata=_caller(policy, prefix + "UpsertEntries", tokens),
        )
    elif service == "ingest":
        camera = camera_pb2.Camera(
            camera_id="cam-1",
            kind=camera_pb2.CAMERA_KIND_FIXED,
            display_name="cam",
            location=geo_pb2.GeoPoint(latitude=-33.9, longitude=18.4),
        )
        await ingest_service_pb2_grpc.IngestServiceStub(channel).RegisterCamera(
            ingest_service_pb2.RegisterCameraRequest(camera=camera),
            metadata=_caller(policy, "/anpr.ingest.v1.IngestService/RegisterCamera", tokens),
        )
