"""Synthetic plate data: plate renderer, reader crops, detection scenes, sample sheets.

Needs only numpy, opencv-python-headless and Pillow (no torch), so CI can test it. Everything is deterministic from
a numpy ``Generator`` seed. ``python -m anpr.synth sheet --out sheet.png --seed 0`` writes a sample sheet.
"""

from anpr.synth.crops import ReaderSample, reader_sample
from anpr.synth.formats import FORMATS, SA_FORMATS, PlateFormat
from anpr.synth.plate import Plate, render_plate
from anpr.synth.scene import Scene, render_scene

__all__ = [
    "FORMATS",
    "SA_FORMATS",
    "Plate",
    "PlateFormat",
    "ReaderSample",
    "Scene",
    "reader_sample",
    "render_plate",
    "render_scene",
]
