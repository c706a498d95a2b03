"""A structure-aware gRPC fuzzer: hypothesis strategies built from descriptors read by reflection, and a raw sender.

Every case is one call of one RPC with one caller (a role's token, an unknown token or none) and one or more
request messages as raw bytes: a message generated from the method's input descriptor (field values mixed from
plausible ones, boundaries and known-hostile strings), the serialized form of such a message with bytes flipped,
dropped or inserted, or garbage bytes. Client streams send up to three messages, so later messages are fuzzed too.

The property: no call ends in UNKNOWN, INTERNAL or DATA_LOSS (a server fault), a call that is not a server stream
ends before its deadline (no hang), and the server answers its health check afterwards. Used by the CI test
(``tests/security/test_fuzz.py``) and the long run (``bench/security/fuzz.py``).
"""

from __future__ import annotations

import base64
import json
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from hypothesis import strategies as st

SERVER_FAULTS = frozenset({"UNKNOWN", "INTERNAL", "DATA_LOSS"})
NO_TOKEN = ""  # the caller sends no authorization metadata
UNKNOWN_TOKEN = "nobody"  # a token absent from the server's file

_SKIPPED_SERVICES = ("grpc.health.", "grpc.reflection.")


@dataclass(frozen=True)
class Method:
    """One RPC as reflection describes it."""

    path: str  # /package.Service/Method
    input: Descriptor
    client_streaming: bool
    server_streaming: bool

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Case:
    """One call: who calls, with which request bytes, and how they were made."""

    method: Method
    caller: str  # a role name, UNKNOWN_TOKEN or NO_TOKEN
    kind: str  # generated, flipped or garbage (of the first message)
    messages: tuple[bytes, ...]

    def __repr__(self) -> str:  # shown by hypothesis for a failing case
        return f"Case({self.method.path}, caller={self.caller!r}, kind={self.kind}, messages={self.messages!r})"


@dataclass(frozen=True)
class Outcome:
    """How a call ended."""

    code: str
    seconds: float
    hang: bool = False
    details: str = ""

    @property
    def fault(self) -> bool:
        return self.code in SERVER_FAULTS or self.hang


@dataclass
class Tally:
    """Counts of outcomes by method and code, with a few examples of each fault."""

    codes: Counter[str] = field(default_factory=Counter)
    by_method: dict[str, Counter[str]] = field(default_factory=dict)
    faults: list[dict[str, Any]] = field(default_factory=list)
    hangs: int = 0
    cases: int = 0

    def add(self, case: Case, outcome: Outcome) -> None:
        self.cases += 1
        self.codes[outcome.code] += 1
        self.by_method.setdefault(case.method.name, Counter())[outcome.code] += 1
        self.hangs += outcome.hang
        if outcome.fault and len(self.faults) < 50:
            self.faults.append(
                {
                    "method": case.method.path,
                    "caller": case.caller,
                    "kind": case.kind,
                    "code": outcome.code,
                    "hang": outcome.hang,
                    "details": outcome.details[:300],
                    "messages": [base64.b64encode(m[:2000]).decode() for m in case.messages],
                }
            )


# -- discovery ----------------------------------------------------------------------------------------------------


def discover(address: str) -> list[Method]:
    """Every method of every non-standard service the server lists by reflection (blocking; run in a thread)."""
    with grpc.insecure_channel(address) as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        pool = descriptor_pool.DescriptorPool(database)
        methods = []
        for service_name in database.get_services():
            if service_name.startswith(_SKIPPED_SERVICES):
                continue
            service = pool.FindServiceByName(service_name)
            for method in service.methods:
                methods.append(
                    Method(
                        path=f"/{service.full_name}/{method.name}",
                        input=method.input_type,
                        client_streaming=method.client_streaming,
                        server_streaming=method.server_streaming,
                    )
                )
        return methods


# -- values -------------------------------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


# Each one a defect class seen before: control characters, non-ASCII digits, huge numbers, trailing newlines,
# leading dashes, LIKE/glob wildcards, zero-width text, forged and deeply nested page tokens, local paths and URLs.
HOSTILE_STRINGS = (
    "",
    "\x00",
    "a\x00b",
    "x\n",
    "l\n",
    "cam-1\n",
    "\x1b[2J",
    "²",
    "١٢٣",
    "-1",
    "-cam",
    ".",
    "\u200b",
    "%",
    "*",
    "'",
    "9" * 19,
    "18446744073709551616",
    "1" * 4301,
    "a" * 5000,
    _b64(b"[" * 100_000),
    _b64(json.dumps({"p": "zzz", "f": "0" * 16}).encode()),
    _b64(json.dumps({"p": [None, "x"], "f": "0" * 16}).encode()),
    _b64(b"alerts:" + b"9" * 30),
    _b64("alerts:²".encode()),
    "../../../../etc/passwd",
    "file:///etc/passwd",
    "rtsp://127.0.0.1:1/x",
    "http://169.254.169.254/latest/meta-data/",
)
PLAUSIBLE_STRINGS = (
    "l",
    "watch",
    "CA123456",
    "CA 123-456",
    "CA1*",
    "CA?23456",
    "cam-1",
    "cam-2",
    "1",
    "2",
    "42",
    "display_name",
    "description",
    "priority",
    "labels",
    "investigation",
    "case-17",
    "00000000-0000-4000-8000-000000000001",
)
_INT32 = (0, 1, -1, 2, 100, 2**31 - 1, -(2**31))
_INT64 = (*_INT32, 2**53, 2**63 - 1, -(2**63))
_UINT32 = (0, 1, 2, 1000, 2**32 - 1)
_UINT64 = (*_UINT32, 2**63 - 1, 2**63, 2**64 - 1)
_TIMESTAMP_SECONDS = (0, 1_700_000_000, -62_135_596_800, -62_135_596_801, 253_402_300_799, 253_402_300_800, 2**63 - 1)
_DURATION_SECONDS = (0, 1, -1, 60, 315_576_000_000, 315_576_000_001, -(2**63), 2**63 - 1)
_NANOS = (0, 1, 999_999_999, 1_000_000_000, -1, 2**31 - 1)


def _tiny_png() -> bytes:
    import cv2  # the services' own image library
    import numpy as np

    ok, data = cv2.imencode(".png", np.full((48, 96, 3), 200, np.uint8))
    assert ok
    return bytes(data)


def strings() -> st.SearchStrategy[str]:
    """Plausible, hostile and arbitrary text."""
    return st.one_of(st.sampled_from(PLAUSIBLE_STRINGS), st.sampled_from(HOSTILE_STRINGS), st.text(max_size=24))


def _scalar(field_descriptor: FieldDescriptor, images: Sequence[bytes]) -> st.SearchStrategy[Any]:
    kind = field_descriptor.type
    t = FieldDescriptor
    if kind == t.TYPE_STRING:
        return strings()
    if kind == t.TYPE_BYTES:
        return st.one_of(st.sampled_from(images), st.binary(max_size=64))
    if kind == t.TYPE_BOOL:
        return st.booleans()
    if kind in (t.TYPE_DOUBLE, t.TYPE_FLOAT):
        special = st.sampled_from((0.0, 0.5, 1.0, -1.0, 91.0, 1e308, float("nan"), float("inf"), float("-inf")))
        return st.one_of(special, st.floats(width=64 if kind == t.TYPE_DOUBLE else 32))
    if kind == t.TYPE_ENUM:
        enum = field_descriptor.enum_type
        assert enum is not None
        return st.one_of(st.sampled_from([v.number for v in enum.values]), st.sampled_from((-1, 99, 2**31 - 1)))
    if kind in (t.TYPE_UINT64, t.TYPE_FIXED64):
        return st.one_of(st.sampled_from(_UINT64), st.integers(0, 2**64 - 1))
    if kind in (t.TYPE_UINT32, t.TYPE_FIXED32):
        return st.one_of(st.sampled_from(_UINT32), st.integers(0, 2**32 - 1))
    if kind in (t.TYPE_INT64, t.TYPE_SINT64, t.TYPE_SFIXED64):
        return st.one_of(st.sampled_from(_INT64), st.integers(-(2**63), 2**63 - 1))
    return st.one_of(st.sampled_from(_INT32), st.integers(-(2**31), 2**31 - 1))


@st.composite
def messages(draw: st.DrawFn, descriptor: Descriptor, images: Sequence[bytes], depth: int = 0) -> Message:
    """A message of ``descriptor`` with a few fields set (nested messages to a small depth)."""
    message = message_factory.GetMessageClass(descriptor)()
    name = descriptor.full_name
    if name in ("google.protobuf.Timestamp", "google.protobuf.Duration"):
        seconds = _TIMESTAMP_SECONDS if name.endswith("Timestamp") else _DURATION_SECONDS
        message.seconds = draw(st.one_of(st.sampled_from(seconds), st.integers(-(2**40), 2**40)))  # type: ignore[attr-defined]
        message.nanos = draw(st.sampled_from(_NANOS))  # type: ignore[attr-defined]
        return message
    fields = list(descriptor.fields)
    if depth >= 4 or not fields:
        return message
    chosen = draw(st.lists(st.sampled_from(fields), max_size=min(6, len(fields)), unique_by=lambda f: f.number))
    for f in chosen:
        _set(draw, message, f, images, depth)
    return message


def _set(draw: st.DrawFn, message: Any, f: FieldDescriptor, images: Sequence[bytes], depth: int) -> None:
    sub = f.message_type
    if sub is not None and sub.GetOptions().map_entry:
        key_field, value_field = sub.fields_by_name["key"], sub.fields_by_name["value"]
        for _ in range(draw(st.integers(0, 3))):
            key = draw(_scalar(key_field, images))
            if value_field.message_type is not None:
                getattr(message, f.name)[key].CopyFrom(draw(messages(value_field.message_type, images, depth + 1)))
            else:
                getattr(message, f.name)[key] = draw(_scalar(value_field, images))
        return
    count = draw(st.integers(0, 3)) if f.is_repeated else 1
    for _ in range(count):
        if sub is not None:
            value = draw(messages(sub, images, depth + 1))
            if f.is_repeated:
                getattr(message, f.name).add().CopyFrom(value)
            else:
                getattr(message, f.name).CopyFrom(value)
        elif f.is_repeated:
            getattr(message, f.name).append(draw(_scalar(f, images)))
        else:
            setattr(message, f.name, draw(_scalar(f, images)))


@st.composite
def _flipped(draw: st.DrawFn, descriptor: Descriptor, images: Sequence[bytes]) -> bytes:
    data = bytearray(draw(messages(descriptor, images)).SerializeToString())
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(("flip", "drop", "insert", "truncate")))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if action == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif action == "drop" and data:
            del data[at]
        elif action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif action == "truncate":
            del data[at:]
    return bytes(data)


_GARBAGE = (b"\xff" * 12, b"\x0a\xff\xff\xff\xff\x0f", b"\x08\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01", b"\x0b")


def _payload(descriptor: Descriptor, images: Sequence[bytes]) -> st.SearchStrategy[tuple[str, bytes]]:
    generated = messages(descriptor, images).map(lambda m: ("generated", m.SerializeToString()))
    flipped = _flipped(descriptor, images).map(lambda b: ("flipped", b))
    garbage = st.one_of(st.sampled_from(_GARBAGE), st.binary(min_size=1, max_size=96)).map(lambda b: ("garbage", b))
    return st.one_of(generated, generated, generated, flipped, garbage)


@st.composite
def cases(
    draw: st.DrawFn, methods: Sequence[Method], policy: Mapping[str, frozenset[str]], roles: Sequence[str]
) -> Case:
    """A call of one of ``methods``, mostly by a role the policy allows (so the handler runs), else by anyone."""
    method = draw(st.sampled_from(methods))
    allowed = sorted(policy.get(method.path, frozenset()))
    anyone = st.sampled_from([*roles, UNKNOWN_TOKEN, NO_TOKEN])
    caller = draw(st.one_of(st.sampled_from(allowed), st.sampled_from(allowed), anyone) if allowed else anyone)
    images = (_IMAGES[0],) if _IMAGES else (b"",)
    count = draw(st.integers(1, 3)) if method.client_streaming else 1
    drawn = [draw(_payload(method.input, images)) for _ in range(count)]
    return Case(method, caller, drawn[0][0], tuple(payload for _, payload in drawn))


_IMAGES: list[bytes] = []


def prepare_images() -> None:
    """Load the one valid image the strategies mix in (once; needs OpenCV)."""
    if not _IMAGES:
        _IMAGES.append(_tiny_png())


# -- sending ------------------------------------------------------------------------------------------------------


def _metadata(caller: str, tokens: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return () if caller == NO_TOKEN else (("authorization", f"Bearer {tokens[caller]}"),)


def send(channel: grpc.Channel, case: Case, tokens: Mapping[str, str], timeout: float = 10.0) -> Outcome:
    """Make the call with raw bytes on a blocking channel and report the status the server gave it.

    A server stream that takes no client stream (SubscribeAlerts) is read for one reply and then cancelled: it
    stays open by design, so its deadline is short and DEADLINE_EXCEEDED there means "still open", not a hang.
    Every other call must end by itself within ``timeout``. The blocking client is used because grpc.aio's
    client reports "Internal error from Core" for a client stream that the server ends while messages are still
    being sent (the server's status, e.g. PERMISSION_DENIED, is what the blocking client and the server's own
    metrics show).
    """
    method, metadata = case.method, _metadata(case.caller, tokens)
    rpc: Any = channel  # raw bytes in and out: no serializers (the typing stubs insist on them)
    started = time.perf_counter()
    open_stream = method.server_streaming and not method.client_streaming
    try:
        if method.client_streaming and method.server_streaming:
            for _ in rpc.stream_stream(method.path)(iter(case.messages), metadata=metadata, timeout=timeout):
                pass
        elif method.client_streaming:
            rpc.stream_unary(method.path)(iter(case.messages), metadata=metadata, timeout=timeout)
        elif open_stream:
            replies = rpc.unary_stream(method.path)(case.messages[0], metadata=metadata, timeout=1.0)
            next(replies, None)
            replies.cancel()
        else:
            rpc.unary_unary(method.path)(case.messages[0], metadata=metadata, timeout=timeout)
    except grpc.RpcError as error:
        code: grpc.StatusCode = error.code()
        details: str = error.details() or ""
        if open_stream and code in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED):
            return Outcome("OK", time.perf_counter() - started, details="stream open; cancelled by the fuzzer")
        hang = code == grpc.StatusCode.DEADLINE_EXCEEDED
        return Outcome(code.name, time.perf_counter() - started, hang, details)
    return Outcome("OK", time.perf_counter() - started)


def serving(channel: grpc.Channel) -> bool:
    """Whether the server still answers its health check with SERVING."""
    stub = health_pb2_grpc.HealthStub(channel)
    try:
        reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=5)
    except grpc.RpcError:
        return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)
