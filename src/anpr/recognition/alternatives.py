"""Top-N readings from per-slot probabilities.

The few most uncertain slots (smallest gap between their best and second-best character) each contribute their
``per_slot`` most likely characters, the pad character included (so readings of another length appear too); every
combination is scored at once as the product of its slots' probabilities. With fixed-slot readers the slots are
independent, so ranking by that product is the reader's own ranking of whole readings.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True, slots=True)
class Candidate:
    """A candidate text, its probability, and the slot each character came from."""

    text: str
    confidence: float
    slots: tuple[int, ...]


def top_readings(
    slot_probabilities: npt.NDArray[np.float32],
    alphabet: str,
    pad_char: str,
    *,
    count: int,
    per_slot: int = 3,
    max_varied: int = 4,
) -> list[Candidate]:
    """The ``count`` most probable distinct texts, best first (pads removed)."""
    if count <= 0 or slot_probabilities.size == 0:
        return []
    logs = np.log(np.maximum(slot_probabilities.astype(np.float64), 1e-12))
    top = np.argsort(-logs, axis=1)[:, :per_slot]  # [slots, per_slot] best characters per slot
    top_logs = np.take_along_axis(logs, top, axis=1)
    # Only the most uncertain slots vary; the others keep their best character. Every combination of their
    # candidates is scored at once (per_slot ** uncertain rows), which is exact for the top readings whenever
    # the fixed slots' runner-up characters are less likely than the varied ones'.
    uncertain = np.argsort(top_logs[:, 1] - top_logs[:, 0])[::-1][:max_varied]
    combos = _combinations(len(uncertain), top.shape[1])  # [combinations, uncertain]
    base = top_logs[:, 0].sum() - top_logs[uncertain, 0].sum()
    scores = base + top_logs[uncertain[None, :], combos].sum(axis=1)
    order = np.argsort(-scores, kind="stable")
    pad_index = alphabet.index(pad_char)
    best = top[:, 0].tolist()
    varied = uncertain.tolist()
    candidates = top.tolist()
    seen: set[str] = set()
    out: list[Candidate] = []
    for row in order.tolist():
        indices = list(best)
        for slot, pick in zip(varied, combos[row].tolist(), strict=True):
            indices[slot] = candidates[slot][pick]
        slots = tuple(i for i, index in enumerate(indices) if index != pad_index)
        text = "".join(alphabet[indices[i]] for i in slots)
        if text in seen:
            continue
        seen.add(text)
        out.append(Candidate(text, math.exp(float(scores[row])), slots))
        if len(out) == count:
            break
    return out


@functools.cache
def _combinations(varied: int, per_slot: int) -> npt.NDArray[np.int64]:
    return np.array(list(itertools.product(range(per_slot), repeat=varied)), dtype=np.int64).reshape(-1, varied)
