"""The recognition engine behind the gRPC servicer: per-stage batching across requests, and hot model reload.

Each image goes decode -> detect -> crop -> read -> post-process. Decoding and cropping run in a thread pool
(OpenCV releases the GIL); detection and reading go through one :class:`BatchQueue` each, so concurrent requests
and stream messages share model batches (detection over frames, reading over all plate crops of the batch).

A *model set* is a loaded pipeline with its own queues. Reloading builds and warms a new set beside the old one,
then swaps the reference: requests that started on the old set finish on it, and the old set is closed once idle.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

import cv2
import numpy as np

from anpr.recognition.errors import ImageInputError, ModelError
from anpr.recognition.imaging import DecodedImage, DecodeLimits, ImageArray
from anpr.recognition.manifest import ModelManifest
from anpr.recognition.models import MODELS_DIR
from anpr.recognition.pipeline import PipelineConfig, RecognitionOptions, RecognitionPipeline
from anpr.recognition.session import SessionOptions
from anpr.recognition.types import Detection, ImageResult, RawReading, StageTimes
from anpr.recognize import metrics
from anpr.recognize.batching import BatchQueue
from anpr.recognize.settings import RecognizeSettings
from anpr.runtime.cpus import usable_cpus
from anpr.runtime.errors import AnprError, FailedPrecondition, ResourceExhausted

log = logging.getLogger(__name__)
ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")


def _fingerprint(manifest: ModelManifest) -> str:
    """Changes whenever the manifest or a file it names changes (size or modification time).

    Only ``stat`` calls: the poll runs every few seconds, and parsing the manifest would also hash the model files.
    A manifest that now names other files has itself changed, so the paths of the loaded one suffice.
    """
    paths = [manifest.source, *manifest.reader.files]
    paths += [spec.path for spec in (manifest.detector, manifest.refiner) if spec is not None]
    digest = hashlib.sha256()
    for path in paths:
        stat = path.stat()
        digest.update(f"{path}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class Recognized:
    """One image's result and, when asked for, its plates' JPEG crops (same order as the plates)."""

    result: ImageResult
    crops: list[bytes] = field(default_factory=list)


@dataclass
class ModelSet:
    """One loaded pipeline with its batch queues and a count of the requests using it."""

    pipeline: RecognitionPipeline
    detect_queue: BatchQueue[DecodedImage, list[Detection]]
    refine_queue: BatchQueue[tuple[DecodedImage, Detection], Detection]
    read_queue: BatchQueue[ImageArray, RawReading]
    fingerprint: str
    loaded_at: datetime
    active: int = 0
    idle: asyncio.Event = field(default_factory=asyncio.Event)

    async def close_when_idle(self) -> None:
        """Wait until no request uses this set, then stop its queues."""
        while self.active:
            self.idle.clear()
            await self.idle.wait()
        await self.detect_queue.close()
        await self.refine_queue.close()
        await self.read_queue.close()


class RecognitionEngine:
    """Loads the configured models and recognises images with batching across concurrent callers."""

    def __init__(self, settings: RecognizeSettings) -> None:
        self.settings = settings
        self.location = settings.model_dir or MODELS_DIR
        cores = usable_cpus()
        self._decode_pool = ThreadPoolExecutor(settings.decode_workers or cores, thread_name_prefix="decode")
        self._inference_workers = settings.inference_workers or cores
        self._inference_pool = ThreadPoolExecutor(2 * self._inference_workers, thread_name_prefix="inference")
        self._current: ModelSet | None = None
        self._reload_lock = asyncio.Lock()
        self._retiring: set[asyncio.Task[None]] = set()
        self._watcher: asyncio.Task[None] | None = None
        # Images between admission and the detect queue, and between detection and the read queue: the batch
        # queues wait for a fuller batch only while such work is on its way.
        self._decoding = 0
        self._cropping = 0

    # Loading ------------------------------------------------------------------------------------------------

    def _load_pipeline(self) -> tuple[RecognitionPipeline, str]:
        s = self.settings
        options = SessionOptions(
            providers=tuple(s.providers),
            intra_op_threads=s.intra_op_threads,
            trt_cache_dir=s.tensorrt_cache_dir,
            fp16=s.fp16,
        )
        limits = DecodeLimits(max_bytes=s.max_image_bytes, max_pixels=s.max_image_pixels)
        pipeline = RecognitionPipeline.load(
            self.location,
            session_options=options,
            config=PipelineConfig(limits=limits, default_regions=tuple(s.default_plate_regions)),
        )
        _warm_up(pipeline)
        return pipeline, _fingerprint(pipeline.manifest)

    def _model_set(self, pipeline: RecognitionPipeline, fingerprint: str) -> ModelSet:
        s = self.settings
        detect: BatchQueue[DecodedImage, list[Detection]] = BatchQueue(
            "detect",
            pipeline.detect,
            executor=self._inference_pool,
            max_batch_size=s.detect_batch_size,
            max_wait_seconds=s.max_batch_wait_seconds,
            max_queue=s.max_queued_images,
            concurrency=self._inference_workers,
            incoming=lambda: self._decoding,
        )
        refine: BatchQueue[tuple[DecodedImage, Detection], Detection] = self._box_queue("refine", pipeline.refine)
        read: BatchQueue[ImageArray, RawReading] = self._box_queue("read", pipeline.read)
        detect.start()
        refine.start()
        read.start()
        metrics.record_model(pipeline.info.name, pipeline.info.version, pipeline.info.execution_provider)
        return ModelSet(pipeline, detect, refine, read, fingerprint, datetime.now(UTC))

    def _box_queue(
        self, stage: str, run_batch: Callable[[Sequence[ItemT]], Sequence[ResultT]]
    ) -> BatchQueue[ItemT, ResultT]:
        """A batch queue of a stage that works on the boxes of admitted images (refine, read): every admitted image
        may bring several, and they are never refused once their image was admitted."""
        s = self.settings
        return BatchQueue(
            stage,
            run_batch,
            executor=self._inference_pool,
            max_batch_size=s.read_batch_size,
            max_wait_seconds=s.max_batch_wait_seconds,
            max_queue=s.max_queued_images * 16,
            concurrency=self._inference_workers,
            incoming=lambda: self._cropping,
        )

    async def start(self) -> None:
        """Load and warm the models; then watch the model files when polling is enabled."""
        pipeline, fingerprint = await asyncio.to_thread(self._load_pipeline)
        self._current = self._model_set(pipeline, fingerprint)
        if self.settings.model_poll_seconds > 0:
            self._watcher = asyncio.create_task(self._watch(), name="model-watcher")

    async def close(self) -> None:
        """Stop watching, stop every model set and the thread pools; safe to call twice."""
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
            self._watcher = None
        if self._current is not None:
            current, self._current = self._current, None
            await current.detect_queue.close()
            await current.refine_queue.close()
            await current.read_queue.close()
        for task in list(self._retiring):
            task.cancel()
        self._decode_pool.shutdown(wait=False, cancel_futures=True)
        self._inference_pool.shutdown(wait=False, cancel_futures=True)

    @property
    def current(self) -> ModelSet:
        """The model set serving new requests."""
        if self._current is None:
            raise FailedPrecondition("models are not loaded")
        return self._current

    async def reload(self, *, force: bool) -> tuple[ModelSet, ModelSet, bool]:
        """Load the models again; returns (previous, current, whether swapped). Keeps the old set on failure."""
        async with self._reload_lock:
            previous = self.current
            try:
                if (
                    not force
                    and await asyncio.to_thread(_fingerprint, previous.pipeline.manifest) == previous.fingerprint
                ):
                    return previous, previous, False
                pipeline, fingerprint = await asyncio.to_thread(self._load_pipeline)
            except (ModelError, OSError) as exc:
                metrics.MODEL_RELOADS.labels("failed").inc()
                raise FailedPrecondition(f"models not reloaded, the previous ones stay in use: {exc}") from exc
            current = self._model_set(pipeline, fingerprint)
            self._current = current
            task = asyncio.create_task(previous.close_when_idle(), name="retire-models")
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)
            metrics.MODEL_RELOADS.labels("reloaded").inc()
            log.info("models reloaded", extra={"model": pipeline.info.name, "version": pipeline.info.version})
            return previous, current, True

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.settings.model_poll_seconds)
            try:
                await self.reload(force=False)
            except FailedPrecondition as exc:
                log.error("%s", exc.message)
            except Exception:
                log.exception("model watcher failed; retrying at the next poll")

    # Recognition --------------------------------------------------------------------------------------------

    @asynccontextmanager
    async def using(self) -> AsyncIterator[ModelSet]:
        """The current model set, kept alive (not retired) while the block runs."""
        models = self.current
        models.active += 1
        try:
            yield models
        finally:
            models.active -= 1
            if not models.active:
                models.idle.set()

    def admit(self, images: int) -> None:
        """Refuse a request up front when its images would overflow the detection queue."""
        depth = self.current.detect_queue.depth
        if depth + images > self.settings.max_queued_images:
            metrics.IMAGES_REJECTED.labels("overloaded").inc(images)
            raise ResourceExhausted(
                f"recognize is overloaded ({depth} images queued, limit {self.settings.max_queued_images});"
                " retry with backoff or on another replica"
            )

    async def recognize(
        self,
        models: ModelSet,
        data: bytes,
        options: RecognitionOptions,
        deadline: float | None,
        *,
        with_crops: bool = False,
        plate_crop: bool = False,
    ) -> Recognized:
        """Recognise one image on ``models`` (``plate_crop``: it is already a plate, read whole without detection);
        image problems come back in the result, not as exceptions."""
        loop = asyncio.get_running_loop()
        pipeline = models.pipeline
        started = time.perf_counter()
        self._decoding += 1
        try:
            image = await loop.run_in_executor(
                self._decode_pool, functools.partial(pipeline.decode, data, plate_crop=plate_crop)
            )
        except ImageInputError as exc:
            metrics.IMAGES_REJECTED.labels(exc.reason.lower()).inc()
            return Recognized(ImageResult(times=StageTimes(decode=time.perf_counter() - started), error=exc))
        finally:
            self._decoding -= 1
        decoded = time.perf_counter()
        metrics.STAGE_SECONDS.labels("decode").observe(decoded - started)
        try:
            return await self._recognize_decoded(
                models, image, options, deadline, started, decoded, with_crops=with_crops, plate_crop=plate_crop
            )
        except AnprError:
            raise
        except Exception as exc:
            # A model stage failed on this image even alone (batching.py retries a failed batch item by item):
            # this image gets an internal error, and the request's other images are unaffected.
            log.exception("recognising an image failed")
            metrics.IMAGES_REJECTED.labels("internal").inc()
            return Recognized(
                ImageResult(
                    width=image.width, height=image.height, times=StageTimes(decode=decoded - started), error=exc
                )
            )

    async def _recognize_decoded(
        self,
        models: ModelSet,
        image: DecodedImage,
        options: RecognitionOptions,
        deadline: float | None,
        started: float,
        decoded: float,
        *,
        with_crops: bool,
        plate_crop: bool,
    ) -> Recognized:
        loop = asyncio.get_running_loop()
        pipeline = models.pipeline

        self._cropping += 1
        try:
            refining = decoded
            if plate_crop:
                detections = [pipeline.whole(image)]
            else:
                detections = pipeline.select(await models.detect_queue.submit(image, deadline), options)
                refining = time.perf_counter()
                metrics.STAGE_SECONDS.labels("detect").observe(refining - decoded)
                if pipeline.refiner is not None and detections:
                    detections = pipeline.worth_reading(
                        await asyncio.gather(*(models.refine_queue.submit((image, d), deadline) for d in detections)),
                        options,
                    )
                    metrics.STAGE_SECONDS.labels("refine").observe(time.perf_counter() - refining)
            detected = time.perf_counter()
            crops = await loop.run_in_executor(self._decode_pool, _crops, pipeline, image, detections)
        finally:
            self._cropping -= 1
        raws = await asyncio.gather(*(models.read_queue.submit(crop, deadline) for crop in crops))
        kept = await loop.run_in_executor(
            self._decode_pool,
            functools.partial(pipeline.plates, detections, raws, options, image=image, plate_crop=plate_crop),
        )
        plates = [plate for _, plate in kept]
        encoded = (
            await loop.run_in_executor(self._decode_pool, _encode, [crops[i] for i, _ in kept]) if with_crops else []
        )
        finished = time.perf_counter()
        if detections:
            metrics.STAGE_SECONDS.labels("read").observe(finished - detected)
        metrics.PLATES_FOUND.inc(len(plates))
        times = StageTimes(
            decode=decoded - started, detect=refining - decoded, refine=detected - refining, read=finished - detected
        )
        return Recognized(ImageResult(tuple(plates), image.width, image.height, times), encoded)


def _crops(pipeline: RecognitionPipeline, image: DecodedImage, detections: Sequence[Detection]) -> list[ImageArray]:
    return [pipeline.crop(image, detection) for detection in detections]


def _encode(crops: Sequence[ImageArray]) -> list[bytes]:
    encoded = []
    for crop in crops:
        ok, data = cv2.imencode(".jpg", crop, (cv2.IMWRITE_JPEG_QUALITY, 90))
        encoded.append(data.tobytes() if ok else b"")
    return encoded


def _warm_up(pipeline: RecognitionPipeline) -> None:
    """Run every stage once so the first real request does not pay for lazy initialisation."""
    frame = np.full((720, 1280, 3), 127, dtype=np.uint8)
    ok, encoded = cv2.imencode(".jpg", frame)
    if not ok:
        raise ModelError("could not encode the warm-up frame")
    if pipeline.detector is not None:
        pipeline.recognize([encoded.tobytes()])
    pipeline.read([frame[300:364, 500:628]])
