"""The reader contract the pipeline programs against, and the choice of adapter by the manifest's reader format.

Two adapters satisfy :class:`PlateReader`: :class:`~anpr.recognition.fast_plate_ocr.FastPlateOcrReader` (fixed
slots, ``fast-plate-ocr``) and :class:`~anpr.recognition.paddle_ctc.PaddleOcrCtcReader` (CTC text lines,
``paddleocr-ctc``). Both turn BGR crops into :class:`RawReading` rows over an alphabet they name, so syntax-aware
correction and the alternatives search work the same on either.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt

from anpr.recognition.errors import ModelError
from anpr.recognition.fast_plate_ocr import FastPlateOcrReader
from anpr.recognition.manifest import ReaderSpec
from anpr.recognition.paddle_ctc import PaddleOcrCtcReader
from anpr.recognition.session import SessionOptions
from anpr.recognition.types import RawReading


class PlateReader(Protocol):
    """A loaded plate reader; ``read`` is synchronous and thread-safe."""

    @property
    def spec(self) -> ReaderSpec:
        """The manifest entry the reader was loaded from."""
        ...

    @property
    def provider(self) -> str:
        """The execution provider that runs the model."""
        ...

    @property
    def precision(self) -> str:
        """The model's input and output types, for model info."""
        ...

    @property
    def alphabet(self) -> str:
        """The columns of :attr:`RawReading.probabilities` (the rows syntax-aware correction weighs)."""
        ...

    @property
    def slot_alphabet(self) -> str:
        """The columns of :attr:`RawReading.slot_probabilities` (the rows the alternatives search varies)."""
        ...

    @property
    def pad_char(self) -> str:
        """The character of :attr:`slot_alphabet` that stands for "no character here"."""
        ...

    @property
    def input_width(self) -> int:
        """The model's nominal input width (the widest line, for a variable-width reader)."""
        ...

    @property
    def input_height(self) -> int:
        """The model's input height."""
        ...

    def read(self, crops: list[npt.NDArray[np.uint8]]) -> list[RawReading]:
        """Raw readings of BGR plate crops, in order."""
        ...


def create_reader(
    spec: ReaderSpec, options: SessionOptions | None = None, *, max_batch: int | None = None
) -> PlateReader:
    """Load the reader adapter of ``spec.format``; raises :class:`ModelError` for an unknown format or a bad model.

    ``max_batch`` caps the crops per model call; by default each adapter picks its own.
    """
    if spec.format == "fast-plate-ocr":
        return FastPlateOcrReader(spec, options, max_batch=max_batch)
    if spec.format == "paddleocr-ctc":
        return PaddleOcrCtcReader(spec, options, max_batch=max_batch)
    raise ModelError(f"reader {spec.path}: format {spec.format!r} is unknown")
