"""The demo fleet and the street video it plays, with every vehicle pass kept as ground truth.

Each camera plays its own street: a background from the project's scene renderer (a wall or verge above a grey
road), and vehicles that approach one after another, their plate (from :func:`anpr.synth.render_plate`, South
African formats mostly, other countries' in the mix) growing and moving down the frame over several frames, with a
few empty frames between vehicles. Dash-cams, mobile units and the body-worn camera move: each frame carries a GPS
fix on the unit's track (a straight line from its start at its speed and heading, in Cape Town); the body-worn
camera's frames go into a recording that is uploaded (:mod:`anpr.demo.bodycam`). Everything is deterministic from
the seed.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import cv2
import numpy as np
import numpy.typing as npt

from anpr.api.ingest.v1 import camera_pb2
from anpr.synth.formats import FORMATS, SA_FORMATS, pick_format
from anpr.synth.plate import Plate, render_plate
from anpr.synth.scene import clutter_background

FRAME_SIZE = (1280, 720)
FRAMES_PER_PASS = (6, 9)  # a vehicle is in view for this many frames (inclusive range)
GAP_FRAMES = (2, 4)  # empty road between two vehicles
SOUTH_AFRICAN_SHARE = 0.8
METRES_PER_DEGREE = 111_320.0
CAPE_TOWN = (-33.9249, 18.4241)
Image = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class DemoCamera:
    """One simulated camera; ``speed`` 0 for a fixed camera (its position is registered, frames carry no GPS)."""

    camera_id: str
    kind: int  # camera_pb2.CameraKind
    display_name: str
    latitude: float
    longitude: float
    heading_degrees: float = 0.0
    speed_meters_per_second: float = 0.0
    # A fixed ANPR camera that finds plates itself and sends one plate crop per vehicle, nothing in between.
    sends_crops: bool = False

    @property
    def moving(self) -> bool:
        """Whether the camera moves (dash-cam, mobile unit): its frames carry GPS fixes."""
        return self.speed_meters_per_second > 0

    @property
    def records(self) -> bool:
        """Whether the camera records and uploads its video (body-worn) rather than pushing frames live."""
        return self.kind == camera_pb2.CAMERA_KIND_BODY

    @property
    def kind_name(self) -> str:
        """``fixed``, ``dash``, ``mobile`` or ``body``."""
        return camera_pb2.CameraKind.Name(self.kind).removeprefix("CAMERA_KIND_").lower()  # type: ignore[arg-type]

    def position(self, seconds: float) -> tuple[float, float]:
        """Latitude and longitude ``seconds`` after the start of the demo."""
        metres = self.speed_meters_per_second * seconds
        heading = math.radians(self.heading_degrees)
        north, east = metres * math.cos(heading), metres * math.sin(heading)
        latitude = self.latitude + north / METRES_PER_DEGREE
        return latitude, self.longitude + east / (METRES_PER_DEGREE * math.cos(math.radians(latitude)))


def demo_fleet() -> list[DemoCamera]:
    """Two fixed cameras, a parking gate that sends plate crops, two dash-cams, two mobile units and an officer's
    body-worn camera around central Cape Town."""
    lat, lon = CAPE_TOWN
    fixed, dash, mobile = camera_pb2.CAMERA_KIND_FIXED, camera_pb2.CAMERA_KIND_DASH, camera_pb2.CAMERA_KIND_MOBILE
    body = camera_pb2.CAMERA_KIND_BODY
    return [
        DemoCamera("demo-fixed-n1", fixed, "N1 gantry, Century City", lat + 0.0410, lon + 0.0930),
        DemoCamera("demo-fixed-m3", fixed, "M3 Rhodes Drive", lat - 0.0450, lon + 0.0390),
        DemoCamera("demo-gate-01", fixed, "Civic Centre parking gate", lat + 0.0070, lon + 0.0010, sends_crops=True),
        DemoCamera("demo-dash-01", dash, "Patrol car 01 dash-cam", lat + 0.0050, lon - 0.0040, 40.0, 14.0),
        DemoCamera("demo-dash-02", dash, "Patrol car 02 dash-cam", lat - 0.0120, lon + 0.0150, 210.0, 11.0),
        DemoCamera("demo-mobile-01", mobile, "Mobile unit 01 (Sea Point)", lat + 0.0090, lon - 0.0420, 300.0, 9.0),
        DemoCamera("demo-mobile-02", mobile, "Mobile unit 02 (Woodstock)", lat - 0.0020, lon + 0.0260, 95.0, 8.0),
        DemoCamera("demo-body-07", body, "Officer 07 body-worn (Long Street)", lat + 0.0010, lon - 0.0020, 20.0, 1.4),
    ]


@dataclass
class VehiclePass:
    """Ground truth of one vehicle passing one camera: the plate shown and the capture times of its frames."""

    camera_id: str
    plate: str
    plate_format: str
    frame_count: int
    hotlisted: bool = False
    recorded: bool = False  # from the body-worn recording: captured earlier than it was uploaded
    first_capture: float = 0.0  # filled in as the frames are sent
    last_capture: float = 0.0
    frames_sent: int = 0

    @property
    def complete(self) -> bool:
        """Whether every frame of the pass was sent."""
        return self.frames_sent == self.frame_count


@dataclass
class StreetFrame:
    """One frame to send: JPEG bytes and the pass in view (None on empty road)."""

    jpeg: bytes
    vehicle: VehiclePass | None


@dataclass(frozen=True)
class PlannedVehicle:
    """A vehicle that will pass: its rendered plate, and whether the demo hotlist has it."""

    plate: Plate
    hotlisted: bool


@dataclass
class StreetVideo:
    """The endless street video of one camera, from a per-camera seed; vehicles are planned ahead in batches so
    that the hotlist can hold some of their plates before they pass."""

    camera: DemoCamera
    seed: int
    hotlist_share: float = 0.25
    planned: list[PlannedVehicle] = field(default_factory=list)
    _rng: np.random.Generator = field(init=False)
    _background: Image = field(init=False)

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.seed)
        self._background = street_background(self._rng)

    def plan(self, count: int) -> list[PlannedVehicle]:
        """Plan ``count`` more vehicles; returns them (the caller hotlists those marked)."""
        batch = []
        for _ in range(count):
            formats = SA_FORMATS if self._rng.random() < SOUTH_AFRICAN_SHARE else FORMATS
            plate = render_plate(self._rng, pick_format(self._rng, formats))
            batch.append(PlannedVehicle(plate, bool(self._rng.random() < self.hotlist_share)))
        self.planned.extend(batch)
        return batch

    def frames(self) -> Iterator[StreetFrame]:
        """:meth:`images` as JPEG."""
        empty_road = encode(self._background)  # the same picture between any two vehicles: encoded once
        for image, vehicle in self.images():
            yield StreetFrame(empty_road if image is self._background else encode(image), vehicle)

    def images(self) -> Iterator[tuple[Image, VehiclePass | None]]:
        """Vehicles one after another, empty road between them (plans more when the plan runs out); RGB images."""
        while True:
            for _ in range(int(self._rng.integers(GAP_FRAMES[0], GAP_FRAMES[1] + 1))):
                yield self._background, None
            if not self.planned:
                self.plan(1)
            planned = self.planned.pop(0)
            plate = planned.plate
            if self.camera.sends_crops:
                vehicle = VehiclePass(self.camera.camera_id, plate.label, plate.format, 1, planned.hotlisted)
                yield plate_crop(plate.image, [float(v) for v in self._rng.uniform(30, 200, 3)]), vehicle
                continue
            count = int(self._rng.integers(FRAMES_PER_PASS[0], FRAMES_PER_PASS[1] + 1))
            vehicle = VehiclePass(self.camera.camera_id, plate.label, plate.format, count, planned.hotlisted)
            body = [float(v) for v in self._rng.uniform(30, 200, 3)]
            lane = float(self._rng.uniform(-0.15, 0.15))
            for step in range(count):
                image = self._background.copy()
                draw_vehicle(image, plate.image, step / max(1, count - 1), lane, body)
                yield image, vehicle


def street_background(rng: np.random.Generator) -> Image:
    """A wall or verge from the scene renderer above a grey road with lane markings."""
    width, height = FRAME_SIZE
    image = clutter_background(rng, width, height)
    horizon = height // 3
    road = np.full((height - horizon, width, 3), 0, np.float32)
    road += np.float32(rng.uniform(70, 110))
    road += rng.standard_normal((height - horizon, width, 1), dtype=np.float32) * np.float32(4)
    image[horizon:] = np.clip(road, 0, 255).astype(np.uint8)
    for x in (width // 3, 2 * width // 3):
        cv2.line(image, (width // 2, horizon), (x + (x - width // 2) * 3, height), (200, 200, 190), 4)
    return image


def draw_vehicle(image: Image, plate: Image, progress: float, lane: float, colour: list[float]) -> None:
    """A vehicle approaching: at ``progress`` 0 far up the road and small, at 1 near and large."""
    width, height = FRAME_SIZE
    plate_width = int(150 + 90 * progress)
    plate_height = max(8, int(plate_width * plate.shape[0] / plate.shape[1]))
    cx = int(width * (0.5 + lane * (0.5 + progress)))
    cy = int(height * (0.48 + 0.32 * progress))
    half = int(plate_width * 1.5)
    top, bottom = cy - int(plate_width * 1.1), cy + int(plate_width * 0.35)
    cv2.rectangle(image, (cx - half, top), (cx + half, bottom), colour, -1)
    windscreen = [max(0.0, c * 0.35) for c in colour]
    cv2.rectangle(
        image, (cx - int(half * 0.8), top + 8), (cx + int(half * 0.8), top + int(plate_width * 0.45)), windscreen, -1
    )
    for side in (-1, 1):  # headlamps
        lamp = (cx + side * int(half * 0.75), cy - int(plate_width * 0.25))
        cv2.circle(image, lamp, max(6, plate_width // 9), (235, 235, 215), -1)
    x0, y0 = cx - plate_width // 2, cy - plate_height // 2
    image[y0 : y0 + plate_height, x0 : x0 + plate_width] = cv2.resize(
        plate, (plate_width, plate_height), interpolation=cv2.INTER_AREA
    )


def plate_crop(plate: Image, colour: list[float]) -> Image:
    """What a gate camera sends: the plate it found, 240 px wide, with a little of the car around it."""
    width = 240
    height = max(8, int(width * plate.shape[0] / plate.shape[1]))
    margin = width // 16
    crop = np.full((height + 2 * margin, width + 2 * margin, 3), [int(c) for c in colour], np.uint8)
    crop[margin : margin + height, margin : margin + width] = cv2.resize(
        plate, (width, height), interpolation=cv2.INTER_AREA
    )
    return crop


def encode(image: Image) -> bytes:
    """JPEG of an RGB image."""
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        raise ValueError("could not encode a demo frame")
    return bytes(data.tobytes())
