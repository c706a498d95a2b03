"""Paired comparison of two ``anpr eval`` runs on the same labelled set: which plates each reads right.

On openalpr-br (114 plates) one plate moves a share by 0.9 points, so two model sets are told apart by the plates
they read differently. ``anpr eval --outcomes FILE`` writes, per labelled plate, whether it was read right (JSON
lines: ``{"image": "images/x.jpg", "plate": 0, "exact": true, "folded": true}``; no reading, but the images as
``labels.jsonl`` names them, and openalpr's sets name them after their plates: keep the file where the labels are
kept, under the same retention); a later run with ``--against FILE`` counts the plates only one of the two reads
right and gives the exact McNemar test's two-sided p-value: the chance of a split at least that lopsided if both
model sets read these plates equally well. Runs made with ``--losses`` also record each plate's stage, and the
comparison says where each run lost the plates only the other reads right. A small p-value says the difference is
more than which plates happened to be in the set; it says nothing about how another training draw of the same recipe
would do (that needs several draws).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from anpr.cli.binomial import pmf

MEASURES = ("exact", "folded")


@dataclass(frozen=True, slots=True)
class Outcome:
    """Whether one labelled plate was read right in one run."""

    image: str
    plate: int  # the plate's position among its image's labels
    exact: bool
    folded: bool
    # With ``anpr eval --losses``: where the plate was read or lost (an ``anpr.cli.losses.STAGES`` entry).
    stage: str | None = None

    @property
    def key(self) -> tuple[str, int]:
        """The labelled plate it is about."""
        return (self.image, self.plate)


def write_outcomes(path: Path, outcomes: Iterable[Outcome]) -> None:
    """One JSON line per outcome."""
    path.write_text("".join(json.dumps(asdict(o)) + "\n" for o in outcomes), encoding="utf-8")


def read_outcomes(path: Path) -> list[Outcome]:
    """The outcomes in ``path``; ``ValueError`` naming the line of a malformed one."""
    out = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            exact, folded = (record[m] for m in MEASURES)
            if not (isinstance(exact, bool) and isinstance(folded, bool) and isinstance(record["plate"], int)):
                raise TypeError("exact and folded must be true or false, plate a number")
            stage = record.get("stage")
            if stage is not None and not isinstance(stage, str):
                raise TypeError("stage must be a name")
            out.append(Outcome(str(record["image"]), record["plate"], exact, folded, stage))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}:{number}: malformed outcome line ({exc})") from exc
    return out


def mcnemar_p(only_before: int, only_now: int) -> float:
    """Exact two-sided McNemar p-value: twice the tail of Binomial(discordant, 1/2) at the smaller count, at most 1."""
    n = only_before + only_now
    if n == 0:
        return 1.0
    return min(1.0, 2 * sum(pmf(k, n, 0.5) for k in range(min(only_before, only_now) + 1)))


def compare(before: Sequence[Outcome], now: Sequence[Outcome]) -> dict[str, Any]:
    """The plates both runs scored, and per measure: right in each, right in one only, and the McNemar p-value."""
    earlier = {o.key: o for o in before}
    pairs = [(earlier[o.key], o) for o in now if o.key in earlier]
    figures: dict[str, Any] = {"plates": len(pairs), "only_in_one_run": len(now) + len(before) - 2 * len(pairs)}
    for measure in MEASURES:
        was = [getattr(a, measure) for a, _ in pairs]
        is_ = [getattr(b, measure) for _, b in pairs]
        only_before = sum(a and not b for a, b in zip(was, is_, strict=True))
        only_now = sum(b and not a for a, b in zip(was, is_, strict=True))
        figures[measure] = {
            "right_before": sum(was),
            "right_now": sum(is_),
            "only_before": only_before,
            "only_now": only_now,
            "p_value": round(mcnemar_p(only_before, only_now), 4),
            # Where the plates one run alone reads right were lost by the other (runs with --losses).
            "lost_now_at": _stages(b for (a, b), x, y in zip(pairs, was, is_, strict=True) if x and not y),
            "lost_before_at": _stages(a for (a, b), x, y in zip(pairs, was, is_, strict=True) if y and not x),
        }
    return figures


def _stages(outcomes: Iterable[Outcome]) -> dict[str, int]:
    """How many of ``outcomes`` have each stage (those without one left out), most first."""
    return dict(Counter(o.stage for o in outcomes if o.stage is not None).most_common())
