"""Plate formats and syntax-aware correction.

A catalogue (``plate_formats.yaml`` by default, or an operator's file of the same shape) lists formats as positional
patterns. Correction scores every pattern of the reading's length:

    score = sum(log p_i(c_i)) + log(weight) - log(number of strings the pattern allows)

where ``c_i`` is the raw character when the pattern allows it, otherwise a listed glyph confusion of it (O<->0,
I<->1, B<->8, S<->5, Z<->2, G<->6, ...) that the pattern allows, and ``p_i`` is the reader's probability for it.
The best-scoring pattern gives the corrected text and the format; the softmax over the candidates is the format
confidence. So a letter becomes a digit only where the format demands a digit *and* the reader's own evidence
does not contradict it badly; generic formats compete, so a foreign plate is not forced into a local syntax.

Hints (the plate regions a camera or deployment expects, e.g. ``ZA-WC``, ``ZA``) multiply the weight of their
formats by ``hint_boost``, and make every format of another country *foreign*: a foreign format may still name a
reading that fits it as read, but it may replace a character only by one the reader itself gave at least half the
raw character's probability (same-glyph pairs included). Without hints every format is on an equal footing.
Without probabilities (text only), a raw character counts as 0.9 and a confusion as 0.1. With probabilities, O
and 0, and I and 1, count at least 1/9 of each other's probability (the same odds): many plate fonts draw them
alike (the Brazilian plate font's 1 is a bare stroke, an I; US plates share one glyph for O and 0), so a reader
that is sure between them has no evidence to be sure with, and only the syntax can decide. Other confusions (B/8,
S/5, ...) are distinct glyphs, where a confident reader is not overruled.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import yaml

from anpr.recognition.errors import ModelError
from anpr.recognition.types import FormatMatch

LETTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
DIGITS = frozenset("0123456789")
_CLASSES = {"L": LETTERS, "D": DIGITS, "X": LETTERS | DIGITS}
_TOKEN = re.compile(r"(?P<cls>[LDX])|\[(?P<set>[^\]]+)\]|'(?P<lit>[A-Z0-9]+)'|(?P<sep>[ -])|\{(?P<rep>\d+(?:,\d+)?)\}")
_TEXT_ONLY_RAW = 0.9
_TEXT_ONLY_CONFUSION = 0.1
_CONFUSION_ODDS = _TEXT_ONLY_CONFUSION / _TEXT_ONLY_RAW
_SAME_GLYPH = (("O", "0"), ("I", "1"))
_FLOOR = 1e-6
_TEXT_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
# A format of a country outside the expected regions may replace a character only by one the reader gave at least
# this share of the raw character's probability.
_FOREIGN_EVIDENCE = 0.5
_MAX_HINT_SETS = 256


@dataclass(frozen=True, slots=True)
class PlateFormat:
    """One catalogue entry."""

    id: str
    country: str
    region: str
    weight: float
    patterns: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Template:
    fmt: PlateFormat
    positions: tuple[frozenset[str], ...]
    layout: tuple[int | str, ...]  # position index or separator, in display order
    log_size: float
    specific: bool  # some position allows fewer than all plate characters (catch-alls like X{1,8} do not)

    def display(self, text: str) -> str:
        return "".join(text[item] if isinstance(item, int) else item for item in self.layout)


@dataclass(frozen=True, slots=True)
class Correction:
    """The result of correcting one reading."""

    text: str
    raw_text: str
    display_text: str
    format: FormatMatch | None
    character_confidences: tuple[float, ...]
    corrections: int
    # The matched pattern constrains some position: the syntax, not only the length, fits the reading.
    specific: bool = False


def _expand_set(body: str) -> frozenset[str]:
    chars: set[str] = set()
    i = 0
    while i < len(body):
        if i + 2 < len(body) and body[i + 1] == "-":
            chars.update(chr(c) for c in range(ord(body[i]), ord(body[i + 2]) + 1))
            i += 3
        else:
            chars.add(body[i])
            i += 1
    return frozenset(chars)


def parse_pattern(pattern: str) -> list[tuple[tuple[frozenset[str], ...], tuple[int | str, ...]]]:
    """Expand a pattern into its fixed-length variants: (allowed set per position, display layout)."""
    # Each unit: (allowed set, min repeat, max repeat) or a separator string.
    units: list[tuple[frozenset[str], int, int] | str] = []
    pos = 0
    for match in _TOKEN.finditer(pattern):
        if match.start() != pos:
            raise ValueError(f"pattern {pattern!r}: cannot parse at {pattern[pos:]!r}")
        pos = match.end()
        if match["cls"]:
            units.append((_CLASSES[match["cls"]], 1, 1))
        elif match["set"]:
            units.append((_expand_set(match["set"]), 1, 1))
        elif match["lit"]:
            units.extend((frozenset(ch), 1, 1) for ch in match["lit"])
        elif match["sep"]:
            units.append(match["sep"])
        else:
            last = units[-1] if units else None
            if not isinstance(last, tuple) or last[1:] != (1, 1):
                raise ValueError(f"pattern {pattern!r}: a repeat must follow a class or set")
            low, _, high = match["rep"].partition(",")
            units[-1] = (last[0], int(low), int(high or low))
    if pos != len(pattern) or not units:
        raise ValueError(f"pattern {pattern!r}: cannot parse at {pattern[pos:]!r}")
    ranges = [range(u[1], u[2] + 1) if isinstance(u, tuple) else range(1) for u in units]
    variants = []
    for counts in product(*ranges):
        positions: list[frozenset[str]] = []
        layout: list[int | str] = []
        for unit, count in zip(units, counts, strict=True):
            if isinstance(unit, str):
                layout.append(unit)
                continue
            for _ in range(count):
                layout.append(len(positions))
                positions.append(unit[0])
        if positions:
            variants.append((tuple(positions), tuple(layout)))
    return variants


class FormatCatalogue:
    """Formats and glyph confusions; ``correct`` applies them to one reading. Immutable, so thread-safe."""

    def __init__(
        self,
        formats: Sequence[PlateFormat],
        confusions: Iterable[str],
        *,
        hint_boost: float = 20.0,
        correction_penalty: float = 0.05,
        unformatted_weight: float = 0.05,
    ) -> None:
        self.formats = tuple(formats)
        self.hint_boost = hint_boost
        self.log_penalty = math.log(correction_penalty)
        self.log_unformatted = math.log(unformatted_weight)
        # Ordered: on equal evidence the earlier character of a group wins (0 reads back as O before D).
        self.confusions: dict[str, tuple[str, ...]] = {}
        for group in confusions:
            for ch in group:
                known = self.confusions.get(ch, ())
                self.confusions[ch] = known + tuple(c for c in group if c != ch and c not in known)
        self._tables: dict[tuple[str, int], _LengthTable] = {}
        self._hinted: dict[tuple[int, frozenset[str]], tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]] = {}
        self._by_length: dict[int, list[_Template]] = {}
        for fmt in self.formats:
            for pattern in fmt.patterns:
                for positions, layout in parse_pattern(pattern):
                    log_size = sum(math.log(len(allowed)) for allowed in positions)
                    specific = any(not allowed >= _CLASSES["X"] for allowed in positions)
                    template = _Template(fmt, positions, layout, log_size, specific)
                    self._by_length.setdefault(len(positions), []).append(template)

    def select(self, ids_or_countries: Iterable[str]) -> FormatCatalogue:
        """A catalogue restricted to formats named by id, country or region (e.g. ``ZA``, ``br-standard``)."""
        wanted = {item.upper() for item in ids_or_countries}
        chosen = [f for f in self.formats if {f.id.upper(), f.country, f.region} & wanted]
        groups = [k + "".join(v) for k, v in self.confusions.items()]
        return FormatCatalogue(
            chosen,
            groups,
            hint_boost=self.hint_boost,
            correction_penalty=math.exp(self.log_penalty),
            unformatted_weight=math.exp(self.log_unformatted),
        )

    def _table(self, alphabet: str, n: int) -> _LengthTable | None:
        """The vectorised templates of length ``n`` over ``alphabet`` (built once, then cached)."""
        key = (alphabet, n)
        table = self._tables.get(key)
        if table is None and self._by_length.get(n):
            table = _LengthTable.build(self._by_length[n], alphabet, self.confusions)
            # A plain dict store is atomic under the GIL; two threads building the same table is harmless.
            self._tables[key] = table
        return table

    def _priors(
        self, table: _LengthTable, hints: Sequence[str]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_] | None]:
        """Per template of ``table``: its log weight with the hints' boost, and whether its country is one the
        ``hints`` name (a region such as ``ZA-WC`` names its country, ``ZA``; None without hints, when every format
        is as expected as any other). Worked out once per table and set of hints, not per reading."""
        if not hints:
            return table.log_weight, None
        key = (id(table), frozenset(h.upper() for h in hints))
        found = self._hinted.get(key)
        if found is None:
            hinted = key[1]
            countries = {h.split("-", 1)[0] for h in hinted}
            boost = np.array([bool(hinted & {t.fmt.country, t.fmt.region}) for t in table.templates])
            weights = table.log_weight + np.where(boost, math.log(self.hint_boost), 0.0)
            expected = np.array([t.fmt.country in countries for t in table.templates], dtype=np.bool_)
            if len(self._hinted) >= _MAX_HINT_SETS:  # callers choose hints: keep the cache bounded
                self._hinted.clear()
            found = self._hinted[key] = (weights, expected)
        return found

    def correct(
        self,
        text: str,
        probabilities: npt.NDArray[np.float32] | None = None,
        alphabet: str = "",
        *,
        hints: Sequence[str] = (),
    ) -> Correction:
        """Correct ``text`` (``probabilities``: one row per character over ``alphabet``, or None for text only)."""
        n = len(text)
        if probabilities is None or not alphabet:
            alphabet = _TEXT_ALPHABET
            probabilities = None
        index = [alphabet.find(ch) for ch in text]
        table = self._table(alphabet, n) if n else None
        if table is None or min(index, default=-1) < 0:
            return Correction(text, text, "", None, (), 0)
        raw = np.asarray(index)
        positions = np.arange(n)
        if probabilities is None:
            probs = np.full((n, len(alphabet)), _TEXT_ONLY_CONFUSION, dtype=np.float64)
            probs[positions, raw] = _TEXT_ONLY_RAW
            evidence = np.zeros_like(probs, dtype=np.bool_)  # text alone is never strong evidence
        else:
            probs = np.maximum(probabilities.astype(np.float64), _FLOOR)
            raw_p = probs[positions, raw]
            evidence = probs >= _FOREIGN_EVIDENCE * raw_p[:, None]
            probs = np.maximum(probs, table.same_glyph[raw] * (raw_p[:, None] * _CONFUSION_ODDS))
        # [templates, n]: the raw character fits as it is.
        fits = table.allowed[:, positions, raw]
        # [templates, n, alphabet]: confusions of the raw character that the position allows, valued by the
        # reader's probability (the preference factor only breaks ties in catalogue order).
        options = table.allowed * (table.preference[raw] * probs)[None]
        weights, expected = self._priors(table, hints)
        if expected is not None:
            # A format of a country the deployment does not expect may only change a character that the reader
            # itself nearly preferred: it names a reading, it never forces one (GB's LLDD LLL turned Slovak
            # NO450AM into NO45OAM).
            options = np.where(expected[:, None, None], options, options * evidence[None])
        best = options.argmax(axis=2)
        reachable = fits | (options.max(axis=2) > 0)
        feasible = reachable.all(axis=1)
        if not feasible.any():
            return Correction(text, text, "", None, (), 0)
        chosen = np.where(fits, raw[None], best)  # [templates, n]
        chosen_p = probs[positions[None], chosen]
        changed = (~fits).sum(axis=1)
        # Settling an O/0 or I/1 by the syntax is reading, not correcting: only other changes pay the penalty.
        penalised = changed - (~fits & (table.same_glyph[raw[None], chosen] > 0)).sum(axis=1)
        scores = np.log(chosen_p).sum(axis=1) + weights - table.log_size + penalised * self.log_penalty
        scores = np.where(feasible, scores, -np.inf)
        # The reading as it stands, in no known format (any string of its length): correction must beat it.
        unformatted = float(np.log(probs[positions, raw]).sum()) + self.log_unformatted - n * math.log(36)
        winner = int(scores.argmax())  # the first of equal scores: catalogue order decides
        best_score = float(scores[winner])
        if unformatted > best_score:
            return Correction(text, text, "", None, (), 0)
        total = float(np.exp(scores[feasible] - best_score).sum()) + math.exp(unformatted - best_score)
        template = table.templates[winner]
        corrected = "".join(alphabet[i] for i in chosen[winner])
        confidences = tuple(float(p) for p in chosen_p[winner]) if probabilities is not None else (1.0,) * n
        fmt = template.fmt
        match = FormatMatch(fmt.id, fmt.country, fmt.region, 1.0 / total, template.specific, fmt.weight)
        return Correction(
            corrected, text, template.display(corrected), match, confidences, int(changed[winner]), template.specific
        )


@dataclass(frozen=True, slots=True)
class _LengthTable:
    """All templates of one length as arrays over one alphabet, for scoring them at once."""

    templates: tuple[_Template, ...]
    allowed: npt.NDArray[np.bool_]  # [templates, n, alphabet]
    preference: npt.NDArray[np.float64]  # [alphabet, alphabet]: > 0 where column is a confusion of row
    same_glyph: npt.NDArray[np.float64]  # [alphabet, alphabet]: 1 where plate fonts draw row and column alike
    log_size: npt.NDArray[np.float64]
    log_weight: npt.NDArray[np.float64]

    @classmethod
    def build(cls, templates: list[_Template], alphabet: str, confusions: dict[str, tuple[str, ...]]) -> _LengthTable:
        n = len(templates[0].positions)
        allowed = np.zeros((len(templates), n, len(alphabet)), dtype=np.bool_)
        for t, template in enumerate(templates):
            for i, chars in enumerate(template.positions):
                allowed[t, i, [alphabet.index(ch) for ch in chars if ch in alphabet]] = True
        preference = np.zeros((len(alphabet), len(alphabet)), dtype=np.float64)
        for a, ch in enumerate(alphabet):
            for rank, other in enumerate(confusions.get(ch, ())):
                if other in alphabet:
                    preference[a, alphabet.index(other)] = 1.0 - rank * 1e-6
        same_glyph = np.zeros_like(preference)
        for first, second in _SAME_GLYPH:
            for ch, other in ((first, second), (second, first)):
                if ch in alphabet and other in alphabet:
                    a, b = alphabet.index(ch), alphabet.index(other)
                    same_glyph[a, b] = float(preference[a, b] > 0)
        return cls(
            templates=tuple(templates),
            allowed=allowed,
            preference=preference,
            same_glyph=same_glyph,
            log_size=np.array([t.log_size for t in templates]),
            log_weight=np.array([math.log(t.fmt.weight) for t in templates]),
        )


def _parse_format(entry: Any, where: str) -> PlateFormat:
    if not isinstance(entry, dict) or "id" not in entry or not entry.get("patterns"):
        raise ModelError(f"{where}: every format needs an id and a list of patterns")
    patterns = entry["patterns"]
    if isinstance(patterns, str):
        patterns = [patterns]
    fmt = PlateFormat(
        id=str(entry["id"]),
        country=str(entry.get("country", "")).upper(),
        region=str(entry.get("region", "")).upper(),
        weight=float(entry.get("weight", 1.0)),
        patterns=tuple(str(p) for p in patterns),
    )
    if fmt.weight <= 0:
        raise ModelError(f"{where}: format {fmt.id} has a weight <= 0")
    for pattern in fmt.patterns:
        try:
            parse_pattern(pattern)
        except ValueError as exc:
            raise ModelError(f"{where}: format {fmt.id}: {exc}") from exc
    return fmt


def load_formats(path: Path | None = None) -> FormatCatalogue:
    """The catalogue in ``path``, or the shipped ``plate_formats.yaml``."""
    if path is None:
        source = resources.files("anpr.recognition").joinpath("plate_formats.yaml")
        where = "plate_formats.yaml"
        text = source.read_text(encoding="utf-8")
    else:
        where = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ModelError(f"plate format file {path} could not be read: {exc}") from exc
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ModelError(f"plate format file {where} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("formats"), list):
        raise ModelError(f"plate format file {where} must have a list under 'formats'")
    formats = [_parse_format(entry, where) for entry in raw["formats"]]
    ids = [f.id for f in formats]
    if len(set(ids)) != len(ids):
        raise ModelError(f"plate format file {where} repeats a format id")
    return FormatCatalogue(
        formats,
        [str(g) for g in raw.get("confusions", [])],
        hint_boost=float(raw.get("hint_boost", 20.0)),
        correction_penalty=float(raw.get("correction_penalty", 0.05)),
        unformatted_weight=float(raw.get("unformatted_weight", 0.05)),
    )
