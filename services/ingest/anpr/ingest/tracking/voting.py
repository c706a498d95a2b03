"""Character-wise voting over the reads of one pass, weighted by per-character confidence."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from anpr.ingest.tracking.model import PlateRead


@dataclass(frozen=True)
class Vote:
    """The outcome of a vote: the winning text with its confidences, and ranked alternatives."""

    text: str
    confidence: float
    character_confidences: tuple[float, ...]
    alternatives: tuple[tuple[str, float], ...]
    agreeing_reads: int  # reads whose text equals the winner exactly
    # Non-zero when the vote had only partial reads (characters hidden): the most runs any of them missed.
    hidden_characters: int = 0


def vote(reads: Sequence[PlateRead], max_alternatives: int = 5) -> Vote | None:
    """Vote over the reads that have text; None when none has.

    The length is chosen first (by total confidence of the reads of each length) because characters are only
    comparable position by position among reads of the same length; a read that dropped or added a character
    still counts through the alternatives. Partial reads (characters hidden from the reader) vote only when the
    pass has no whole read: their text is shorter than the plate, however surely it was read.
    """
    texted = [read for read in reads if read.text]
    if not texted:
        return None
    whole = [read for read in texted if not read.hidden_characters]
    texted = whole or texted
    by_length: dict[int, float] = defaultdict(float)
    for read in texted:
        by_length[len(read.text)] += read.confidence
    length = max(by_length, key=lambda n: (by_length[n], n))
    same_length = [read for read in texted if len(read.text) == length]

    characters: list[str] = []
    confidences: list[float] = []
    for position in range(length):
        weights: dict[str, float] = defaultdict(float)
        counts: dict[str, int] = defaultdict(int)
        for read in same_length:
            weights[read.text[position]] += read.weights()[position]
            counts[read.text[position]] += 1
        winner = max(weights, key=lambda c: (weights[c], c))
        total = sum(weights.values())
        share = weights[winner] / total if total > 0 else 0.0
        mean_confidence = weights[winner] / counts[winner]
        characters.append(winner)
        # Confident only when the winning character was both read confidently and agreed on.
        confidences.append(share * mean_confidence)
    text = "".join(characters)
    overall = sum(confidences) / length if length else 0.0

    # Alternatives: other whole readings seen in the pass or offered by the reader, by summed confidence.
    candidates: dict[str, float] = defaultdict(float)
    for read in texted:
        candidates[read.text] += read.confidence
        for alternative, score in read.alternatives:
            if alternative:
                candidates[alternative] += score
    total_score = sum(candidates.values()) or 1.0
    ranked = sorted(
        ((candidate, score / total_score) for candidate, score in candidates.items() if candidate != text),
        key=lambda item: (-item[1], item[0]),
    )
    return Vote(
        text=text,
        confidence=overall,
        character_confidences=tuple(confidences),
        alternatives=tuple(ranked[:max_alternatives]),
        agreeing_reads=sum(1 for read in texted if read.text == text),
        hidden_characters=0 if whole else max(read.hidden_characters for read in same_length),
    )
