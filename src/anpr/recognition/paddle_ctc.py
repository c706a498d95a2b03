"""Plate reader adapter for the ``paddleocr-ctc`` contract: PaddleOCR-style CTC text-line recognisers in ONNX.

Contract: one float32 NCHW input ``[N, 3, H, W]`` (N and W dynamic, H normally 48) of BGR pixels scaled to
``(x / 255 - 0.5) / 0.5`` and padded on the right with 0; :mod:`~anpr.recognition.ctc_input` prepares it,
as it does for training. The first output is ``[N, T, C]`` per-frame probabilities (softmax applied): class 0 is
the CTC blank, then the dictionary's characters in order and, when C is the dictionary's length plus two, a space
(PaddleOCR's ``use_space_char``). The dictionary is the manifest's ``dictionary`` file, else the model's
``character`` metadata (how RapidOCR's ONNX files carry it), one character per line.

Decoding is greedy: the best class per frame, repeats collapsed, blanks dropped. Characters that are not A-Z/0-9
once upper-cased (space, ``-``, ``.``, other scripts) are dropped as well, so the text is normalised like the
fast-plate-ocr reader's. A dictionary entry :data:`HIDDEN` marks characters a bar hides: it is left out of the
text too, and the reading counts its runs (``hidden``), so the post-processing knows the text is partial. A kept
character's confidence is its run's best frame probability; its ``probabilities`` row is that frame's distribution
folded onto the 36 plate characters (upper and lower case summed) and renormalised. A reading's confidence is the
product of its characters' (0 for an empty reading).

``slot_probabilities`` adapts a CTC reading to the fixed-slot alternatives search: one row per kept character, the
same folded distribution unnormalised, plus a pad column ``_`` holding the frame's blank and dropped-character
mass. The search then proposes substitutions and deletions of the read characters, ranked by the product of the
rows, exactly as for a fixed-slot reader; it cannot propose insertions (CTC would carry those in the frames
between characters), which plates rarely need since the reader's misses are mostly confusions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from anpr.recognition.ctc_input import FloatArray, ImageArray, line_width, normalise, split_rows, stack
from anpr.recognition.errors import ModelError
from anpr.recognition.manifest import ReaderSpec
from anpr.recognition.session import SessionOptions, create_session, single_input
from anpr.recognition.types import RawReading

PLATE_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
# A dictionary entry that marks characters the reader sees are there but cannot read (a bar across the plate):
# one per run of such characters. Not a plate character: the reading's text leaves it out and counts it.
HIDDEN = "?"
PAD_CHAR = "_"
SLOT_ALPHABET = PLATE_ALPHABET + PAD_CHAR
_PAD = len(PLATE_ALPHABET)  # the pad column of a slot row
_COLUMN = {ch: i for i, ch in enumerate(PLATE_ALPHABET)}
DEFAULT_HEIGHT = 48


def parse_dictionary(text: str) -> list[str]:
    """Dictionary entries, one per line (a line may be a space; a final newline ends the last entry)."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


@dataclass(frozen=True, slots=True)
class CtcClasses:
    """How a model's output classes map onto the plate alphabet.

    ``column``: per class, its column in :data:`SLOT_ALPHABET` (the pad column for the blank and for characters
    that are dropped); ``fold``: the same as a ``[C, 37]`` 0/1 matrix, so a frame's distribution times ``fold`` is
    its slot row.
    """

    column: npt.NDArray[np.intp]
    fold: npt.NDArray[np.float32]
    # The class of the hidden-character mark, -1 when the dictionary has none.
    hidden: int = -1

    @property
    def count(self) -> int:
        """The number of output classes."""
        return len(self.column)


def ctc_classes(dictionary: Sequence[str], count: int, model: object) -> CtcClasses:
    """The class map of a model with ``count`` output classes; :class:`ModelError` naming ``model`` if they differ."""
    if count == len(dictionary) + 1:
        characters = ["", *dictionary]
    elif count == len(dictionary) + 2:
        characters = ["", *dictionary, " "]
    else:
        raise ModelError(
            f"reader {model}: the output has {count} classes, but a dictionary of {len(dictionary)} characters "
            f"needs {len(dictionary) + 1} (blank + characters) or {len(dictionary) + 2} (with a space class)"
        )
    # upper() may lengthen a character ("ß" -> "SS"); only a single plate character maps to a column.
    column = np.array([_COLUMN.get(ch.upper(), _PAD) for ch in characters], dtype=np.intp)
    fold = np.zeros((count, len(SLOT_ALPHABET)), dtype=np.float32)
    fold[np.arange(count), column] = 1.0
    return CtcClasses(column, fold, characters.index(HIDDEN) if HIDDEN in characters else -1)


def decode_ctc(probabilities: npt.NDArray[np.float32], classes: CtcClasses) -> list[RawReading]:
    """Greedy CTC decoding of ``[N, T, C]`` frame probabilities; one :class:`RawReading` per line."""
    probs = np.asarray(probabilities, dtype=np.float32)
    best = probs.argmax(axis=-1)  # [N, T]
    best_p = np.take_along_axis(probs, best[..., None], axis=-1)[..., 0]
    kept = classes.column[best] != _PAD
    readings = []
    for n in range(probs.shape[0]):
        line, line_p = best[n], best_p[n]
        starts = np.flatnonzero(np.r_[True, line[1:] != line[:-1]])
        ends = np.r_[starts[1:], len(line)]
        # The peak frame of each run of a kept character: its confidence and its distribution.
        peaks = [int(s + np.argmax(line_p[s:e])) for s, e in zip(starts, ends, strict=True) if kept[n, s]]
        hidden = int(np.count_nonzero(line[starts] == classes.hidden))  # no class is -1: 0 without the mark
        slot_rows = probs[n, peaks] @ classes.fold  # [k, 37]
        plate_rows = slot_rows[:, :_PAD]
        plate_rows = plate_rows / np.maximum(plate_rows.sum(axis=1, keepdims=True), np.float32(1e-12))
        confidences = tuple(float(line_p[t]) for t in peaks)
        readings.append(
            RawReading(
                text="".join(PLATE_ALPHABET[classes.column[line[t]]] for t in peaks),
                character_confidences=confidences,
                confidence=math.prod(confidences) if confidences else 0.0,
                probabilities=plate_rows.astype(np.float32, copy=False),
                slot_probabilities=slot_rows.astype(np.float32, copy=False),
                hidden=hidden,
            )
        )
    return readings


CPU_MAX_BATCH = 8
ACCELERATOR_MAX_BATCH = 64


class PaddleOcrCtcReader:
    """Loads a ``paddleocr-ctc`` model and its dictionary once; ``read`` runs a batch of BGR crops."""

    precision = "float32"
    alphabet = PLATE_ALPHABET
    slot_alphabet = SLOT_ALPHABET
    pad_char = PAD_CHAR

    def __init__(
        self, spec: ReaderSpec, options: SessionOptions | None = None, *, max_batch: int | None = None
    ) -> None:
        self.spec = spec
        self.session = create_session(spec.path, options)
        # Lines per model call: small on the CPU, where a large batch spills the caches (the shipped reader, one
        # core, openalpr-br crops: 3.85 ms per line in chunks of 8, 5.70 ms in chunks of 64), large on a GPU.
        on_cpu = self.provider == "CPUExecutionProvider"
        self.max_batch = max_batch or (CPU_MAX_BATCH if on_cpu else ACCELERATOR_MAX_BATCH)
        io = single_input(self.session, "reader", spec.path, "tensor(float)")
        self.input_name: str = io.input_name
        self.output_name: str = io.output_name
        shape = io.input_shape
        if len(shape) != 4 or (isinstance(shape[1], int) and shape[1] != 3):
            raise ModelError(f"reader {spec.path}: input shape {shape} is not [N, 3, H, W]")
        model_height = shape[2] if isinstance(shape[2], int) else None
        if model_height is not None and spec.input_height is not None and model_height != spec.input_height:
            raise ModelError(
                f"reader {spec.path}: the model's input height is {model_height}, the manifest's input_height "
                f"{spec.input_height}"
            )
        self._height: int = model_height or spec.input_height or DEFAULT_HEIGHT
        self.fixed_batch: int | None = shape[0] if isinstance(shape[0], int) else None
        # A model exported with a fixed width reads every line padded to it (as PaddleOCR does).
        self.fixed_width: int | None = shape[3] if isinstance(shape[3], int) else None
        self.max_width = min(spec.max_width, self.fixed_width or spec.max_width)
        self.min_width = min(spec.min_width, self.max_width)
        self.dictionary = self._load_dictionary()
        out_shape = io.output_shape
        if out_shape and len(out_shape) != 3:
            raise ModelError(f"reader {spec.path}: output shape {out_shape} is not [N, T, classes]")
        count = out_shape[2] if out_shape and isinstance(out_shape[2], int) else self._probe_classes()
        self.classes = ctc_classes(self.dictionary, count, spec.path)

    def _load_dictionary(self) -> list[str]:
        spec = self.spec
        if spec.dictionary is not None:
            try:
                # utf-8-sig: an editor's byte-order mark would otherwise become part of the first character.
                text = spec.dictionary.read_text(encoding="utf-8-sig")
            except (OSError, UnicodeDecodeError) as exc:
                raise ModelError(f"dictionary {spec.dictionary} could not be read: {exc}") from exc
            where = f"dictionary {spec.dictionary}"
        else:
            metadata = self.session.get_modelmeta().custom_metadata_map
            if "character" not in metadata:
                raise ModelError(
                    f"reader {spec.path}: no dictionary; the manifest names no dictionary file and the model has "
                    "no 'character' metadata"
                )
            text = str(metadata["character"])
            where = f"reader {spec.path}: the 'character' metadata"
        characters = parse_dictionary(text)
        if not characters:
            raise ModelError(f"{where} is empty")
        return characters

    def _probe_classes(self) -> int:
        """The class count of a model whose output shape does not say it: one blank line through the model."""
        line = np.zeros((self.fixed_batch or 1, 3, self._height, self.fixed_width or self.min_width), np.float32)
        try:
            return int(self._run(line).shape[-1])
        except ModelError:
            raise
        except Exception as exc:  # onnxruntime raises its own untyped errors for a graph that cannot run
            raise ModelError(f"reader {self.spec.path}: a blank line could not be read: {exc}") from exc

    @property
    def provider(self) -> str:
        """The execution provider that runs this model."""
        return str(self.session.get_providers()[0])

    @property
    def input_width(self) -> int:
        """The widest line the reader feeds the model."""
        return self.max_width

    @property
    def input_height(self) -> int:
        """The model's input height."""
        return self._height

    def line(self, crop: ImageArray) -> FloatArray:
        """One BGR crop as a normalised ``[3, H, W]`` line of the width its aspect ratio asks for."""
        h, w = crop.shape[:2]
        spec = self.spec
        width = line_width(
            w,
            h,
            input_height=self._height,
            width_scale=spec.width_scale,
            min_width=self.min_width,
            max_width=self.max_width,
        )
        if self.fixed_width is not None:
            width = min(width, self.fixed_width)  # line_width rounds up to a multiple of 8
        return normalise(crop, width, self._height)

    def _run(self, batch: FloatArray) -> npt.NDArray[np.float32]:
        if self.fixed_width is not None and batch.shape[3] < self.fixed_width:
            batch = np.pad(batch, ((0, 0), (0, 0), (0, 0), (0, self.fixed_width - batch.shape[3])))
        out = np.asarray(self.session.run([self.output_name], {self.input_name: batch})[0], dtype=np.float32)
        if out.ndim != 3 or out.shape[0] != batch.shape[0]:
            raise ModelError(f"reader {self.spec.path}: output shape {list(out.shape)} is not [N, T, classes]")
        return out

    def decode(self, lines: list[FloatArray]) -> list[RawReading]:
        """Raw readings of prepared lines, in order, run in chunks the model accepts of lines of one width each.

        Never padded to a wider neighbour: the recogniser mixes information along the whole line (its SVTR blocks
        attend across the width), so a padded line read differently from the same line alone (openalpr-br's
        PVX0095 read PVX009 beside a wider crop), and a frame's readings depended on what else shared its batch.
        Plate lines come in a handful of widths (multiples of 8 between the reader's limits), so grouping costs a
        few more, smaller model calls.
        """
        step = self.fixed_batch or self.max_batch
        by_width: dict[int, list[int]] = {}
        for i, line in enumerate(lines):
            by_width.setdefault(int(line.shape[2]), []).append(i)
        chunks = [group[k : k + step] for _, group in sorted(by_width.items()) for k in range(0, len(group), step)]
        readings: dict[int, RawReading] = {}
        for chunk in chunks:
            out = self._run(stack([lines[i] for i in chunk]))
            if out.shape[2] != self.classes.count:
                raise ModelError(
                    f"reader {self.spec.path}: the output has {out.shape[2]} classes, {self.classes.count} expected"
                )
            for i, reading in zip(chunk, decode_ctc(out, self.classes), strict=True):
                readings[i] = reading
        return [readings[i] for i in range(len(lines))]

    def read(self, crops: list[ImageArray]) -> list[RawReading]:
        """Raw readings of BGR plate crops, in order; narrow crops are also read as two rows, the surer wins (the
        other reading rides along as ``other_layout`` for the syntax to weigh, see ``RecognitionPipeline``).

        A narrow crop whose one-line reading holds no character at all is not read again: a two-row plate read as
        one line still yields characters (every one of 60 synthetic two-row crops did), while a detector box with
        nothing to read would pay for a second, wider line.
        """
        if not crops:
            return []
        out = self.decode([self.line(crop) for crop in crops])
        threshold = self.spec.two_row_below
        split = [i for i, crop in enumerate(crops) if crop.shape[1] < threshold * crop.shape[0] and out[i].text]
        if split:
            two_rows = self.decode([self.line(split_rows(crops[i])) for i in split])
            for i, two_row in zip(split, two_rows, strict=True):
                one_line = out[i]
                if two_row.confidence > one_line.confidence:
                    out[i] = replace(two_row, other_layout=one_line)
                else:
                    out[i] = replace(one_line, other_layout=two_row)
        return out
