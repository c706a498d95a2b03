"""Translation between the pipeline's result types and the ``anpr.recognize.v1`` messages."""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from anpr.api.common.v1 import geometry_pb2, image_pb2, plate_pb2
from anpr.api.recognize.v1 import recognition_pb2
from anpr.domain.regions import normalise_regions
from anpr.recognition.errors import ImageInputError
from anpr.recognition.pipeline import ModelInfo, RecognitionOptions
from anpr.recognition.types import FormatMatch, ImageResult, PlateReading
from anpr.runtime.errors import AnprError


def options_from_proto(message: recognition_pb2.RecognitionOptions) -> RecognitionOptions:
    """Request options; zero values mean "server default"."""
    return RecognitionOptions(
        max_plates=message.max_plates or None,
        min_detection_confidence=message.min_detection_confidence or None,
        min_reading_confidence=message.min_reading_confidence or None,
        max_alternatives=message.max_alternatives or None,
        format_hints=normalise_regions(message.format_hints, "options.format_hints"),
    )


def model_version(info: ModelInfo) -> recognition_pb2.ModelVersion:
    """The model set that produced a result."""
    return recognition_pb2.ModelVersion(
        name=info.name, version=info.version, execution_provider=info.execution_provider
    )


def _format(match: FormatMatch | None) -> plate_pb2.PlateFormat | None:
    if match is None:
        return None
    return plate_pb2.PlateFormat(
        format_id=match.format_id,
        country_code=match.country_code,
        region_code=match.region_code,
        confidence=match.confidence,
    )


def reading_to_proto(reading: PlateReading) -> plate_pb2.PlateReading:
    """A plate reading with its alternatives."""
    return plate_pb2.PlateReading(
        text=reading.text,
        raw_text=reading.raw_text,
        display_text=reading.display_text,
        confidence=reading.confidence,
        character_confidences=reading.character_confidences,
        format=_format(reading.format),
        layout=plate_pb2.PlateLayout.ValueType(reading.layout.value),
        alternatives=[
            plate_pb2.AlternativeReading(text=alt.text, confidence=alt.confidence, format=_format(alt.format))
            for alt in reading.alternatives
        ],
        hidden_characters=reading.hidden_characters,
    )


def error_to_proto(error: Exception) -> recognition_pb2.ImageError:
    """A per-image error: the status code the image alone would get, a machine-readable reason and a message."""
    if isinstance(error, ImageInputError | AnprError):
        code = error.code.value[0]
        message = error.message
    else:
        code = AnprError.code.value[0]
        message = "internal error while recognising this image"
    reason_name = getattr(error, "reason", None) or _reason_for_code(code)
    reason = recognition_pb2.ImageErrorReason.Value(f"IMAGE_ERROR_REASON_{reason_name}")
    return recognition_pb2.ImageError(code=code, reason=reason, message=message)


def _reason_for_code(code: int) -> str:
    return {
        grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]: "OVERLOADED",
        grpc.StatusCode.DEADLINE_EXCEEDED.value[0]: "DEADLINE_EXCEEDED",
        grpc.StatusCode.INVALID_ARGUMENT.value[0]: "INVALID_ARGUMENT",
    }.get(code, "INTERNAL")


def result_to_proto(image_id: str, result: ImageResult, crops: Sequence[bytes] = ()) -> recognition_pb2.ImageResult:
    """One image's result; ``crops`` are JPEG plate crops in plate order, when the caller asked for them."""
    message = recognition_pb2.ImageResult(image_id=image_id, image_width=result.width, image_height=result.height)
    message.processing_duration.FromNanoseconds(int(result.times.total * 1e9))
    if result.error is not None:
        message.error.CopyFrom(error_to_proto(result.error))
        return message
    for index, plate in enumerate(result.plates):
        box = plate.box
        detection = recognition_pb2.PlateDetection(
            box=geometry_pb2.BoundingBox(x=box.x, y=box.y, width=box.width, height=box.height),
            detection_confidence=plate.detection_confidence,
            reading=reading_to_proto(plate.reading),
        )
        if index < len(crops):
            detection.crop.CopyFrom(image_pb2.EncodedImage(data=crops[index], encoding=image_pb2.IMAGE_ENCODING_JPEG))
        message.plates.append(detection)
    return message
