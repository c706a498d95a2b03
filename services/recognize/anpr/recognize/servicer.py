"""``anpr.recognize.v1.RecognizeService``: request validation and proto translation around the engine."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

import grpc.aio
from google.protobuf.message import DecodeError

from anpr.api.recognize.v1 import model_pb2, recognition_pb2, recognize_service_pb2, recognize_service_pb2_grpc
from anpr.domain.regions import normalise_regions
from anpr.recognition.pipeline import RecognitionOptions
from anpr.recognition.session import choose_providers
from anpr.recognition.types import ImageResult
from anpr.recognize import metrics
from anpr.recognize.convert import model_version, options_from_proto, result_to_proto
from anpr.recognize.engine import ModelSet, RecognitionEngine
from anpr.recognize.settings import RecognizeSettings
from anpr.runtime.errors import DeadlineExceeded, InvalidArgument, ResourceExhausted

Context = grpc.aio.ServicerContext[Any, Any]


def _deadline(context: Context) -> float | None:
    remaining = context.time_remaining()
    return None if remaining is None else time.monotonic() + remaining


@cache
def _sha256(path: Path, size: int, mtime_ns: int) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _file_sha256(path: Path) -> str:
    stat = path.stat()
    return _sha256(path, stat.st_size, stat.st_mtime_ns)


class RecognizeServicer(recognize_service_pb2_grpc.RecognizeServiceServicer):
    """Recognize, StreamRecognize, GetModelInfo, ReloadModels."""

    def __init__(self, engine: RecognitionEngine, settings: RecognizeSettings) -> None:
        self._engine = engine
        self._settings = settings

    async def Recognize(
        self, request: recognize_service_pb2.RecognizeRequest, context: Context
    ) -> recognize_service_pb2.RecognizeResponse:
        count = len(request.images)
        if count == 0:
            raise InvalidArgument("Recognize needs at least one image")
        if count > self._settings.max_images_per_request:
            raise InvalidArgument(
                f"{count} images in one call; at most {self._settings.max_images_per_request} are accepted"
            )
        metrics.IMAGES.labels("Recognize").inc(count)
        self._engine.admit(count)
        deadline = _deadline(context)
        options = options_from_proto(request.options)
        crops = request.options.include_plate_crops
        async with self._engine.using() as models, asyncio.TaskGroup() as group:
            tasks = [
                group.create_task(self._recognize_image(models, image, options, deadline, with_crops=crops))
                for image in request.images
            ]
        results = [task.result() for task in tasks]
        return recognize_service_pb2.RecognizeResponse(results=results, model=model_version(models.pipeline.info))

    async def StreamRecognize(
        self, request_iterator: AsyncIterator[recognize_service_pb2.StreamRecognizeRequest], context: Context
    ) -> AsyncIterator[recognize_service_pb2.StreamRecognizeResponse]:
        # A bounded queue of running tasks: the reader stops pulling requests when `stream_window` images are in
        # flight, so HTTP/2 flow control pushes back on a fast sender; replies leave in request order.
        window: asyncio.Queue[asyncio.Task[recognize_service_pb2.StreamRecognizeResponse] | None] = asyncio.Queue(
            self._settings.stream_window
        )
        deadline = _deadline(context)

        async def pump() -> None:
            try:
                async for message in request_iterator:
                    await window.put(asyncio.create_task(self._stream_one(message, deadline)))
            except DecodeError as exc:
                raise InvalidArgument("a message of the stream is not a valid StreamRecognizeRequest") from exc
            finally:
                # Always wake the reply loop, which then re-raises the reader's error from `await pumping`: a
                # reader that died on an undecodable message used to leave the stream open forever.
                await window.put(None)

        pumping = asyncio.create_task(pump())
        try:
            while True:
                task = await window.get()
                if task is None:
                    break
                yield await task
            await pumping
        finally:
            pumping.cancel()
            while not window.empty():
                leftover = window.get_nowait()
                if leftover is not None:
                    leftover.cancel()

    async def _recognize_image(
        self,
        models: ModelSet,
        image: recognition_pb2.ImageInput,
        options: RecognitionOptions,
        deadline: float | None,
        *,
        with_crops: bool,
    ) -> recognition_pb2.ImageResult:
        """One image's result; its own bad plate regions fail it alone (INVALID_ARGUMENT in its result)."""
        try:
            regions = normalise_regions(image.plate_regions, "plate_regions")
        except InvalidArgument as exc:
            return result_to_proto(image.image_id, ImageResult(error=exc))
        if regions:
            options = replace(options, format_hints=tuple(dict.fromkeys(options.format_hints + regions)))
        recognized = await self._engine.recognize(
            models, image.image.data, options, deadline, with_crops=with_crops, plate_crop=image.plate_crop
        )
        return result_to_proto(image.image_id, recognized.result, recognized.crops)

    async def _stream_one(
        self, message: recognize_service_pb2.StreamRecognizeRequest, deadline: float | None
    ) -> recognize_service_pb2.StreamRecognizeResponse:
        metrics.IMAGES.labels("StreamRecognize").inc()
        async with self._engine.using() as models:
            try:
                # Bad options fail this image, not the stream.
                options = options_from_proto(message.options)
                self._engine.admit(1)
                result = await self._recognize_image(
                    models, message.image, options, deadline, with_crops=message.options.include_plate_crops
                )
            except (ResourceExhausted, DeadlineExceeded, InvalidArgument) as exc:  # this image only
                result = result_to_proto(message.image.image_id, ImageResult(error=exc))
            return recognize_service_pb2.StreamRecognizeResponse(
                result=result, model=model_version(models.pipeline.info)
            )

    async def GetModelInfo(
        self, request: recognize_service_pb2.GetModelInfoRequest, context: Context
    ) -> recognize_service_pb2.GetModelInfoResponse:
        models = self._engine.current
        pipeline = models.pipeline
        manifest = pipeline.manifest
        components = [
            model_pb2.ModelComponent(
                role=model_pb2.MODEL_ROLE_READER,
                name=manifest.reader.name,
                version=manifest.reader.version,
                model_format=manifest.reader.format,
                sha256=_file_sha256(manifest.reader.path),
                execution_provider=pipeline.reader.provider,
                precision=pipeline.reader.precision,
                input_width=pipeline.reader.input_width,
                input_height=pipeline.reader.input_height,
            )
        ]
        if manifest.detector is not None and pipeline.detector is not None:
            components.insert(
                0,
                model_pb2.ModelComponent(
                    role=model_pb2.MODEL_ROLE_DETECTOR,
                    name=manifest.detector.name,
                    version=manifest.detector.version,
                    model_format=manifest.detector.format,
                    sha256=_file_sha256(manifest.detector.path),
                    execution_provider=pipeline.detector.provider,
                    precision="float32",
                    input_width=pipeline.detector.input_size,
                    input_height=pipeline.detector.input_size,
                ),
            )
        s = self._settings
        response = recognize_service_pb2.GetModelInfoResponse(
            model=model_version(pipeline.info),
            components=components,
            available_execution_providers=choose_providers(),
            formats=[
                model_pb2.SupportedPlateFormat(
                    format_id=fmt.id, country_code=fmt.country, region_code=fmt.region, example=fmt.patterns[0]
                )
                for fmt in pipeline.formats.formats
            ],
            limits=model_pb2.RecognitionLimits(
                max_images_per_request=s.max_images_per_request,
                max_image_bytes=s.max_image_bytes,
                max_image_pixels=s.max_image_pixels,
                max_batch_size=s.detect_batch_size,
                max_queue_depth=s.max_queued_images,
            ),
        )
        response.max_batch_wait.FromNanoseconds(int(s.max_batch_wait_seconds * 1e9))
        response.load_time.FromDatetime(models.loaded_at)
        return response

    async def ReloadModels(
        self, request: recognize_service_pb2.ReloadModelsRequest, context: Context
    ) -> recognize_service_pb2.ReloadModelsResponse:
        previous, current, reloaded = await self._engine.reload(force=request.force)
        return recognize_service_pb2.ReloadModelsResponse(
            previous_model=_version(previous), current_model=_version(current), reloaded=reloaded
        )


def _version(models: ModelSet) -> recognition_pb2.ModelVersion:
    return model_version(models.pipeline.info)
