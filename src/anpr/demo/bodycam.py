"""The demo's body-worn recording: an officer on foot films a few vehicles passing, then uploads the clip.

The clip is rendered like the other cameras' street video (:class:`~anpr.demo.fleet.StreetVideo`), written with
OpenCV's VideoWriter (MJPG in AVI, which every OpenCV build can encode) into the demo's data dir, with a GPX track
of the officer's walk beside it. The recording starts when the demo starts, so the passes' capture times (start +
offset in the video, as ingest computes them) fall in the demo's time range and are scored like the live passes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import cv2

from anpr.demo.fleet import DemoCamera, StreetVideo, VehiclePass

RECORDING_FPS = 5.0  # ingest samples uploads at 5 frames per second by default: every frame is read
RECORDING_VEHICLES = 3
TRAILING_FRAMES = 3  # empty street after the last vehicle, so its pass ends inside the clip
TRACK_STEP_SECONDS = 1.0


@dataclass
class Recording:
    """A recorded clip on disk: the video, its GPX track, when it started and the vehicle passes in it."""

    camera: DemoCamera
    video: Path
    track: Path
    start: float
    duration: float
    passes: list[VehiclePass]

    @property
    def upload_id(self) -> str:
        """The resumable upload id: the file's name (``A-Z a-z 0-9 . _ -``)."""
        return self.video.name


def record(video: StreetVideo, directory: Path, start: float, vehicles: int = RECORDING_VEHICLES) -> Recording:
    """Render ``vehicles`` passes of the camera's street into ``directory`` as a video recorded from ``start``."""
    camera = video.camera
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{camera.camera_id}-{start:.0f}.avi"
    writer: cv2.VideoWriter | None = None
    passes: list[VehiclePass] = []
    index = 0
    trailing = 0
    try:
        for image, vehicle in video.images():
            if vehicle is None and len(passes) == vehicles:
                trailing += 1
                if trailing > TRAILING_FRAMES:
                    break
            elif vehicle is not None and (not passes or passes[-1] is not vehicle):
                if len(passes) == vehicles:
                    break
                vehicle.recorded = True
                vehicle.first_capture = start + round(index * 1000 / RECORDING_FPS) / 1000
                passes.append(vehicle)
            if vehicle is not None:
                vehicle.last_capture = start + round(index * 1000 / RECORDING_FPS) / 1000
                vehicle.frames_sent += 1
            if writer is None:
                height, width = image.shape[:2]
                writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), RECORDING_FPS, (width, height))
                if not writer.isOpened():
                    raise OSError(f"OpenCV cannot write {path}")
            writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            index += 1
    finally:
        if writer is not None:
            writer.release()
    duration = index / RECORDING_FPS
    track = path.with_suffix(".gpx")
    track.write_text(walk_gpx(camera, start, duration), encoding="utf-8")
    return Recording(camera, path, track, start, duration, passes)


def walk_gpx(camera: DemoCamera, start: float, duration: float) -> str:
    """GPX 1.1 of the officer's walk, a point a second from just before the recording to just after it."""
    points = []
    steps = int(duration / TRACK_STEP_SECONDS) + 2
    for step in range(-1, steps + 1):
        seconds = step * TRACK_STEP_SECONDS
        latitude, longitude = camera.position(seconds)
        stamp = datetime.fromtimestamp(start + seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        points.append(f'<trkpt lat="{latitude:.7f}" lon="{longitude:.7f}"><time>{stamp}</time></trkpt>')
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<gpx version="1.1" creator="anpr demo" xmlns="http://www.topografix.com/GPX/1/1">\n'
        f"<trk><name>{camera.display_name}</name><trkseg>\n" + "\n".join(points) + "\n</trkseg></trk></gpx>\n"
    )
