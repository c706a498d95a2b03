"""Plate recognition pipeline: image decoding, plate detection, plate reading and syntax-aware correction.

The recognize service wraps :class:`RecognitionPipeline`; ``anpr read`` and ``anpr eval`` use it directly.
Models come from a manifest (:func:`load_manifest`): the shipped defaults or an operator's own files in the
``yolov9-end2end`` (detector) and ``fast-plate-ocr`` or ``paddleocr-ctc`` (reader) formats.
"""

from __future__ import annotations

from anpr.recognition.errors import (
    CorruptImage,
    DataTooLarge,
    DimensionsTooLarge,
    EmptyImage,
    ImageInputError,
    ModelError,
    NotAnImage,
    ZeroSizeImage,
)
from anpr.recognition.formats import Correction, FormatCatalogue, load_formats
from anpr.recognition.imaging import DecodedImage, DecodeLimits, decode_image
from anpr.recognition.manifest import DetectorSpec, ModelManifest, ReaderSpec, load_manifest
from anpr.recognition.pipeline import ModelInfo, PipelineConfig, RecognitionOptions, RecognitionPipeline
from anpr.recognition.reader import PlateReader, create_reader
from anpr.recognition.session import SessionOptions, choose_providers, create_session
from anpr.recognition.types import (
    Alternative,
    Box,
    Detection,
    FormatMatch,
    ImageResult,
    PlateLayout,
    PlateReading,
    PlateResult,
    StageTimes,
)

__all__ = [
    "Alternative",
    "Box",
    "Correction",
    "CorruptImage",
    "DataTooLarge",
    "DecodeLimits",
    "DecodedImage",
    "Detection",
    "DetectorSpec",
    "DimensionsTooLarge",
    "EmptyImage",
    "FormatCatalogue",
    "FormatMatch",
    "ImageInputError",
    "ImageResult",
    "ModelError",
    "ModelInfo",
    "ModelManifest",
    "NotAnImage",
    "PipelineConfig",
    "PlateLayout",
    "PlateReader",
    "PlateReading",
    "PlateResult",
    "ReaderSpec",
    "RecognitionOptions",
    "RecognitionPipeline",
    "SessionOptions",
    "StageTimes",
    "ZeroSizeImage",
    "choose_providers",
    "create_reader",
    "create_session",
    "decode_image",
    "load_formats",
    "load_manifest",
]
