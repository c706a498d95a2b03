"""The recognition pipeline: decode -> detect -> crop -> read -> syntax-aware post-processing.

:class:`RecognitionPipeline` loads both models once and exposes every stage as a plain synchronous, thread-safe
method, so the recognize service can run them in executors and batch each stage across requests (detection over
the frames of a batch, reading over all plate crops of the batch). :meth:`RecognitionPipeline.recognize` chains
the stages for one batch; a bad image gets its own error and never fails the others.

Plate text is personal information (POPIA): it is never logged here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

from anpr.recognition.alternatives import top_readings
from anpr.recognition.consolidate import keep_plates, select_for_reading
from anpr.recognition.detector import Yolov9End2EndDetector
from anpr.recognition.errors import ImageInputError, ModelError
from anpr.recognition.formats import Correction, FormatCatalogue, load_formats
from anpr.recognition.imaging import DecodedImage, DecodeLimits, ImageArray, decode_image
from anpr.recognition.manifest import ModelManifest, load_manifest
from anpr.recognition.reader import PlateReader, create_reader
from anpr.recognition.refine import MIN_SCORE as REFINER_MIN_SCORE
from anpr.recognition.refine import refine_boxes
from anpr.recognition.session import SessionOptions
from anpr.recognition.types import (
    Alternative,
    Box,
    Detection,
    ImageResult,
    PlateReading,
    PlateResult,
    RawReading,
    StageTimes,
)

logger = logging.getLogger(__name__)

_PLATE_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
# On 1,000 held-out synthetic crops (seed 4242), a share of 0.5 or 0.25 gave the same readings (91.5 -> 91.9 %
# exact); the larger one trusts the syntax less.
_LAYOUT_CONFIDENCE_SHARE = 0.5


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    """Defaults of the pipeline (a request's :class:`RecognitionOptions` override the per-request ones)."""

    limits: DecodeLimits = field(default_factory=DecodeLimits)
    min_detection_confidence: float = 0.25
    # 0 means the model set's own floor: its operating point (the scorer's ``min_confidence``), else the reader's.
    min_reading_confidence: float = 0.0
    max_plates: int = 10
    max_alternatives: int = 3
    # Fraction of the box width/height added on every side before reading: detector boxes sometimes clip a
    # character, and readers are trained on loose crops (the project's reader: -4 % to +12 % of the width, -4 %
    # to +18 % of the height per side). On openalpr-br, with the project's early detector and the peer reader,
    # 0 / 0.05 / 0.1 read 70 / 77 / 85 % exactly; 0.05 sits in the middle of the training distribution. With the
    # models of 2026-12-03 (detector .3, reader .2), 300 synthetic 1080p scenes end to end (`python -m
    # anpr.training evaluate --scenes 300 --margins ...`) read 82.5 / 83.6 / 82.0 / 80.7 / 79.5 % exactly at
    # 0 / 0.05 / 0.08 / 0.12 / 0.16.
    crop_margin: float = 0.05
    # Decode large JPEGs at 1/2, 1/4 or 1/8 size for detection; plates too narrow in the reduced frame are cut
    # from a second, full-resolution decode.
    reduced_decode: bool = True
    # ... but only while the reduced frame's long side stays at least this long (and at least the detector's
    # input). A second decode is expensive (1080p on one core with OpenCV's decoder: 9 ms full, 6.6 ms at 1/2,
    # 4.5 ms at 1/4; simplejpeg, used since, decodes it in about 4-5 ms full) and 1080p frames with 100-300 px
    # plates needed it on most frames, so frames up to 1920 px are decoded once, at full size; 4K frames are
    # decoded at 1/2, where plates of 192 px and more are still read without a re-decode.
    reduced_decode_side: int = 1920
    max_reduction: int = 8
    # A plate narrower than this many pixels in the reduced frame is cut from the full-resolution frame instead;
    # 0 means three quarters of the reader's input width (the peer reader read openalpr-br's plates as well from
    # a 1/2-size decode, median 131 px wide, as from full resolution, and worse from 1/4 size, median 66 px).
    min_crop_width: int = 0
    # Syntax-aware correction on (the raw reading is kept in ``raw_text`` either way).
    correct: bool = True
    # One result per plate (consolidate.py): fragments of a plate are also read as one box, and boxes reading part
    # of a plate that another box reads whole are dropped.
    consolidate: bool = True
    # Plate regions expected when a request names none (a deployment's own country and province, e.g. ZA-WC, ZA).
    default_regions: tuple[str, ...] = ()
    # A second look at every box to read, when the model set has a refiner (refine.py).
    refine: bool = True
    # A box reaching the frame's left or right edge counts one hidden run of characters, after scoring
    # (:func:`runs_off_frame`).
    partial_at_frame_edge: bool = True


@dataclass(frozen=True, slots=True)
class RecognitionOptions:
    """Per-request options (``anpr.recognize.v1.RecognitionOptions``); ``None`` means the pipeline default."""

    max_plates: int | None = None
    min_detection_confidence: float | None = None
    min_reading_confidence: float | None = None
    max_alternatives: int | None = None
    format_hints: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What produced a result (``anpr.recognize.v1.ModelVersion``)."""

    name: str
    version: str
    execution_provider: str


class RecognitionPipeline:
    """Detector + reader + format catalogue, loaded once; every method is synchronous and thread-safe."""

    def __init__(
        self,
        manifest: ModelManifest,
        *,
        session_options: SessionOptions | None = None,
        formats: FormatCatalogue | None = None,
        config: PipelineConfig | None = None,
    ) -> None:
        self.manifest = manifest
        self.config = config or PipelineConfig()
        # The model set's own floor (chosen with its scorer) is never undercut by the generic default.
        scoring = manifest.scoring
        self.detection_floor = max(
            self.config.min_detection_confidence, scoring.min_detection_confidence if scoring is not None else 0.0
        )
        self.formats = formats if formats is not None else load_formats()
        self.reader: PlateReader = create_reader(manifest.reader, session_options)
        self.detector = (
            Yolov9End2EndDetector(manifest.detector, session_options, min_score=self.detection_floor)
            if manifest.detector is not None
            else None
        )
        self.refiner = (
            Yolov9End2EndDetector(manifest.refiner, session_options, min_score=REFINER_MIN_SCORE)
            if manifest.refiner is not None and self.config.refine
            else None
        )
        self.min_crop_width = self.config.min_crop_width or round(0.75 * self.reader.input_width)
        provider = self.detector.provider if self.detector is not None else self.reader.provider
        self.info = ModelInfo(manifest.name, manifest.version, provider)
        logger.info("recognition models %s %s ready on %s", manifest.name, manifest.version, provider)

    @classmethod
    def load(
        cls,
        location: Path,
        *,
        session_options: SessionOptions | None = None,
        formats_file: Path | None = None,
        config: PipelineConfig | None = None,
    ) -> RecognitionPipeline:
        """Load the manifest at ``location`` (directory or file) and its models."""
        return cls(
            load_manifest(location),
            session_options=session_options,
            formats=load_formats(formats_file),
            config=config,
        )

    # Stages -------------------------------------------------------------------------------------------------

    @property
    def detect_size(self) -> int:
        """The detector's square input side (0 for a reading-only model set)."""
        return self.detector.input_size if self.detector is not None else 0

    def decode(self, data: bytes, *, plate_crop: bool = False) -> DecodedImage:
        """Decode one image, reduced for detection where that loses nothing (a plate crop at full resolution: it
        is read, not searched); raises :class:`ImageInputError`."""
        cfg = self.config
        reduce = cfg.reduced_decode and self.detect_size and not plate_crop
        size = max(self.detect_size, cfg.reduced_decode_side) if reduce else 0
        return decode_image(data, limits=cfg.limits, detect_size=size, max_reduction=cfg.max_reduction)

    @staticmethod
    def whole(image: DecodedImage) -> Detection:
        """The whole of an image that is already a plate, as its one detection."""
        return Detection(Box(0.0, 0.0, float(image.width), float(image.height)), 1.0)

    def detect(self, images: Sequence[DecodedImage], *, min_score: float | None = None) -> list[list[Detection]]:
        """Plates of each image as one detector batch, boxes in full-resolution pixels, best first."""
        if self.detector is None:
            raise ModelError(f"model set {self.manifest.source} has no detector; only plate crops can be read")
        found = self.detector.detect([image.detect_image for image in images], min_score=min_score)
        out = []
        for image, detections in zip(images, found, strict=True):
            sx, sy = image.scale
            out.append([replace(d, box=_scaled(d.box, sx, sy)) for d in detections])
        return out

    def refine(self, items: Sequence[tuple[DecodedImage, Detection]]) -> list[Detection]:
        """Each (image, detection to read) with its box refined by the model set's refiner, as one batch; the
        detections as they are without one."""
        if self.refiner is None or self.manifest.refiner is None:
            return [detection for _, detection in items]
        return refine_boxes(self.refiner, items, self.manifest.refiner.context)

    def worth_reading(self, detections: Sequence[Detection], options: RecognitionOptions) -> list[Detection]:
        """The refined detections to read: those the refiner's second look scores at or above
        :meth:`refined_floor`."""
        floor = self.refined_floor(options)
        return [d for d in detections if d.refined is None or d.refined >= floor]

    def detection_floor_for(self, options: RecognitionOptions) -> float:
        """The least detector score a box needs to be looked at: the request's, else the model set's floor."""
        asked = options.min_detection_confidence
        return self.detection_floor if asked is None else asked

    def refined_floor(self, options: RecognitionOptions) -> float:
        """The least refiner score a box needs to be read: the model set's floor, 0 without a scorer or a refiner
        and for a request asking for unsure readings (a lower reading floor than the default: it gets them all)."""
        scoring = self.manifest.scoring
        asked = options.min_reading_confidence
        if scoring is None or self.refiner is None or (asked is not None and asked < scoring.min_confidence):
            return 0.0
        return scoring.min_refined_confidence

    def crop(self, image: DecodedImage, detection: Detection) -> ImageArray:
        """The plate's pixels for the reader (full resolution where the reduced frame is too coarse)."""
        return image.crop(detection.box, min_width=self.min_crop_width, margin=self.config.crop_margin)

    def read(self, crops: Sequence[npt.NDArray[np.uint8]]) -> list[RawReading]:
        """Raw readings of BGR plate crops as one reader batch."""
        return self.reader.read(list(crops))

    def hints(self, options: RecognitionOptions) -> tuple[str, ...]:
        """The plate regions correction prefers for a request: its own, else the configured default."""
        return options.format_hints or self.config.default_regions

    def postprocess(
        self, raw: RawReading, *, hints: Sequence[str] = (), max_alternatives: int | None = None
    ) -> PlateReading:
        """Syntax-aware correction and alternatives for one raw reading."""
        reading, layout = self.corrected(raw, hints=hints)
        return self.with_alternatives(reading, layout, hints=hints, count=max_alternatives)

    def corrected(self, raw: RawReading, *, hints: Sequence[str] = ()) -> tuple[PlateReading, RawReading]:
        """Syntax-aware correction of one raw reading, without alternatives (all the scorer needs), and the row
        layout's raw reading it was made from."""
        raw, fixed = self._choose_layout(raw, hints)
        text, confidences = raw.text, raw.character_confidences
        confidence = raw.confidence
        if fixed is not None:
            text, confidences = fixed.text, fixed.character_confidences
            # The overall confidence follows the corrected characters: swap each corrected slot's probability in.
            for before, after in zip(raw.character_confidences, confidences, strict=True):
                if before > 0 and after != before:
                    confidence *= after / before
        reading = PlateReading(
            text=text,
            raw_text=raw.text,
            confidence=float(confidence),
            character_confidences=confidences,
            display_text=fixed.display_text if fixed is not None else "",
            format=fixed.format if fixed is not None else None,
            hidden_characters=raw.hidden,
        )
        return reading, raw

    def with_alternatives(
        self, reading: PlateReading, layout: RawReading, *, hints: Sequence[str] = (), count: int | None = None
    ) -> PlateReading:
        """``reading`` with up to ``count`` other likely texts of ``layout`` (both from :meth:`corrected`), each
        corrected. Most of post-processing's time goes here (a format match per candidate), so the pipeline spends
        it on reported readings only."""
        count = self.config.max_alternatives if count is None else count
        if count <= 0:
            return reading
        alternatives: list[Alternative] = []
        seen = {reading.text, ""}
        slot_alphabet = self.reader.slot_alphabet
        for candidate in top_readings(layout.slot_probabilities, slot_alphabet, self.reader.pad_char, count=count + 2):
            alt_text = "".join(ch for ch in candidate.text.upper() if ch in _PLATE_CHARS)
            rows = layout.slot_probabilities[list(candidate.slots)]
            alt = self._correct(alt_text, rows, hints, slot_alphabet) if alt_text == candidate.text else None
            if alt is not None:
                alt_text = alt.text
            if alt_text in seen:
                continue
            seen.add(alt_text)
            alternatives.append(Alternative(alt_text, candidate.confidence, alt.format if alt else None))
            if len(alternatives) == count:
                break
        return replace(reading, alternatives=tuple(alternatives))

    def _choose_layout(self, raw: RawReading, hints: Sequence[str]) -> tuple[RawReading, Correction | None]:
        """The reading to keep of a crop the reader read in two row layouts, and its correction.

        The reader keeps the surer layout, but a two-row plate read as one line often yields its bottom row alone,
        and surely (held-out synthetic South African motorcycle plates: 5 of 17 lost their top row so, while the
        two-row reading was right). So a reading that matches a format constraining its characters replaces one
        that matches none while it is at least ``_LAYOUT_CONFIDENCE_SHARE`` as sure.
        """
        alphabet = self.reader.alphabet
        fixed = self._correct(raw.text, raw.probabilities, hints, alphabet)
        other = raw.other_layout
        if other is None or (fixed is not None and fixed.specific):
            return raw, fixed
        other_fixed = self._correct(other.text, other.probabilities, hints, alphabet)
        if (
            other_fixed is not None
            and other_fixed.specific
            and other.confidence >= _LAYOUT_CONFIDENCE_SHARE * raw.confidence
        ):
            return other, other_fixed
        return raw, fixed

    def _correct(
        self, text: str, rows: npt.NDArray[np.float32], hints: Sequence[str], alphabet: str
    ) -> Correction | None:
        """The syntax-aware correction of ``text`` (``rows`` over ``alphabet``), or None when off or unmatched."""
        if not self.config.correct or not text:
            return None
        fixed = self.formats.correct(text, rows, alphabet, hints=hints)
        return fixed if fixed.format is not None else None

    def reading_floor(self, options: RecognitionOptions) -> float:
        """The least confidence a reading needs to be reported: the request's (0 reports every reading with text),
        else the configured, else the model set's operating point."""
        if options.min_reading_confidence is not None:
            return options.min_reading_confidence
        return self.config.min_reading_confidence or self.manifest.min_confidence

    def select(self, detections: Sequence[Detection], options: RecognitionOptions) -> list[Detection]:
        """The detections a request reads (best first): at or above its minimum confidence, at most max_plates
        (with consolidation: plates, each with all its boxes and the union of its pieces; see
        :func:`~anpr.recognition.consolidate.select_for_reading`)."""
        minimum = options.min_detection_confidence or 0.0
        kept = [d for d in detections if d.confidence >= minimum]
        limit = self._limit(options)
        return select_for_reading(kept, limit) if self.config.consolidate else kept[:limit]

    def _limit(self, options: RecognitionOptions) -> int:
        return options.max_plates or self.config.max_plates

    def plates(
        self,
        detections: Sequence[Detection],
        raws: Sequence[RawReading],
        options: RecognitionOptions,
        *,
        image: DecodedImage | None,
        plate_crop: bool = False,
    ) -> list[tuple[int, PlateResult]]:
        """Post-process one image's readings: (index, plate) of those at or above the minimum confidence, one per
        plate, best detection first, at most max_plates. A plate crop's one reading is returned as it is (the
        caller said it is a plate; there is no detection to calibrate against).

        ``image`` is the scene the detections are in (None: no frame to judge by). A box that reaches its left or
        right edge may hold only part of its plate: after scoring, the reading counts the characters beyond the
        edge as one more hidden run (see :func:`runs_off_frame`), so it is voted and matched as the partial
        reading it may be. It is not scored down: a plate ending just inside the edge reads whole, and a pass
        needs its frames' reads to become an event at all (``bench/recognition/bench_frame_edge.py``)."""
        hints = self.hints(options)
        minimum = self.reading_floor(options)
        scorer = self.manifest.scoring
        kept: list[tuple[int, PlateResult]] = []
        layouts: dict[int, RawReading] = {}
        for index, (detection, raw) in enumerate(zip(detections, raws, strict=True)):
            reading, layouts[index] = self.corrected(raw, hints=hints)
            plate = PlateResult(detection.box, detection.confidence, reading, detection.refined)
            if not plate_crop and scorer is not None:
                plate = replace(plate, reading=replace(reading, confidence=scorer.score(plate)))
            if (
                image is not None
                and not plate_crop
                and self.config.partial_at_frame_edge
                and runs_off_frame(detection.box, image, self.detect_size)
            ):
                plate = replace(
                    plate, reading=replace(plate.reading, hidden_characters=plate.reading.hidden_characters + 1)
                )
            # A box read as nothing is no plate, whatever the floor; a plate crop's one reading is its answer.
            if plate_crop or (plate.reading.text and plate.reading.confidence >= minimum):
                kept.append((index, plate))
        if not plate_crop:
            if self.config.consolidate:
                kept = [kept[i] for i in keep_plates([plate for _, plate in kept], self._limit(options))]
            else:
                kept = kept[: self._limit(options)]
        count = options.max_alternatives
        return [
            (i, replace(plate, reading=self.with_alternatives(plate.reading, layouts[i], hints=hints, count=count)))
            for i, plate in kept
        ]

    # Whole batches ------------------------------------------------------------------------------------------

    def recognize(
        self, images: Sequence[bytes], options: RecognitionOptions | None = None, *, plate_crops: Sequence[bool] = ()
    ) -> list[ImageResult]:
        """Recognise a batch of encoded images; per-image errors are returned in that image's result.

        ``plate_crops`` marks the images that are already plates (read whole, without detection; default none).
        """
        options = options or RecognitionOptions()
        crop = list(plate_crops) or [False] * len(images)
        if len(crop) != len(images):
            raise ValueError("plate_crops must have one flag per image")
        decoded: list[DecodedImage | None] = []
        errors: list[Exception | None] = []
        decode_times: list[float] = []
        for data, is_crop in zip(images, crop, strict=True):
            start = time.perf_counter()
            try:
                decoded.append(self.decode(data, plate_crop=is_crop))
                errors.append(None)
            except ImageInputError as exc:
                decoded.append(None)
                errors.append(exc)
            decode_times.append(time.perf_counter() - start)

        scenes = [(i, image) for i, image in enumerate(decoded) if image is not None and not crop[i]]
        start = time.perf_counter()
        found = (
            self.detect([image for _, image in scenes], min_score=self.detection_floor_for(options)) if scenes else []
        )
        detect_share = (time.perf_counter() - start) / max(len(scenes), 1)
        detections = {i: self.select(d, options) for (i, _), d in zip(scenes, found, strict=True)}
        items = [(image, d) for i, image in scenes for d in detections[i]]
        start = time.perf_counter()
        refined = iter(self.refine(items))
        refine_per_box = (time.perf_counter() - start) / max(len(items), 1)
        refined_boxes = {i: len(dets) for i, dets in detections.items()}
        detections = {i: self.worth_reading([next(refined) for _ in dets], options) for i, dets in detections.items()}
        for i, image in enumerate(decoded):
            if image is not None and crop[i]:
                detections[i] = [self.whole(image)]

        start = time.perf_counter()
        crops: list[ImageArray] = []
        for i, dets in detections.items():
            image = decoded[i]
            assert image is not None  # only decoded images have detections
            crops.extend(self.crop(image, detection) for detection in dets)
        raws = self.read(crops)
        plates: dict[int, list[PlateResult]] = {}
        offset = 0
        for i, dets in detections.items():
            own = raws[offset : offset + len(dets)]
            offset += len(dets)
            plates[i] = [plate for _, plate in self.plates(dets, own, options, plate_crop=crop[i], image=decoded[i])]
        read_per_crop = (time.perf_counter() - start) / max(len(crops), 1)

        results = []
        for i, image in enumerate(decoded):
            times = StageTimes(
                decode=decode_times[i],
                detect=detect_share if image is not None and not crop[i] else 0.0,
                refine=refine_per_box * refined_boxes.get(i, 0),
                read=read_per_crop * len(detections.get(i, [])),
            )
            if image is None:
                results.append(ImageResult(times=times, error=errors[i]))
            else:
                results.append(ImageResult(tuple(plates[i]), image.width, image.height, times))
        return results

    def read_plates(
        self, crops: Sequence[npt.NDArray[np.uint8]], options: RecognitionOptions | None = None
    ) -> list[PlateReading]:
        """Read already-cropped plates (BGR arrays): the reading stage alone, with post-processing."""
        options = options or RecognitionOptions()
        hints = self.hints(options)
        return [
            self.postprocess(raw, hints=hints, max_alternatives=options.max_alternatives) for raw in self.read(crops)
        ]


def runs_off_frame(box: Box, image: DecodedImage, detect_size: int) -> bool:
    """Whether ``box`` reaches the left or right edge of ``image`` to within one pixel of the detector's input
    (``detect_size`` pixels for the image's long side; boxes are no sharper than that): the plate may go on beyond
    the edge, its characters there unseen.

    A cut plate reads as a shorter, confident text, which can be another vehicle's plate. The top and bottom edges
    are left out: a plate's row keeps its characters when its top or bottom margin is cut, and detector boxes run
    a few pixels beyond the plate vertically (``bench/recognition/bench_frame_edge.py``).
    """
    margin = max(1.0, max(image.width, image.height) / detect_size) if detect_size > 0 else 1.0
    return box.x <= margin or box.x2 >= image.width - margin


def _scaled(box: Box, sx: float, sy: float) -> Box:
    return Box(box.x * sx, box.y * sy, box.width * sx, box.height * sy)
