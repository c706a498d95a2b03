"""One plate, one result: detector fragments of a plate joined before reading, partial duplicates dropped after.

On close-ups the detector sometimes finds a plate only as overlapping pieces on one line (openalpr-br's PVX0095,
460 px of a 1280-px photo: boxes reading ``PVX0``, ``K00S`` and ``O095``, none of them the whole plate), and beside
a whole plate it often keeps boxes of part of it (JST2699: ``JST2699``, ``JST2``, ``IST26``). Both cost a city
more than a wasted read: a partial text is a plate that was never there, and it reaches the hotlist as a read of
its own.

- Before reading, :func:`select_for_reading` groups the detections into chains that overlap on one line (similar
  heights, most of the height shared), keeps the best chains up to the plate limit with all their boxes, and adds
  each chain's union box, so the whole plate gets read once.
- After reading, :func:`drop_partial_duplicates` keeps, of boxes that overlap, the best reading (one that matches a
  plate format first, then the longer text, then the surer) and drops the boxes whose text is part of it (allowing
  one differing character) or that lie inside a box whose reading matches a format when theirs matches none.

Boxes that overlap but read different plates (a text that is not part of the other's) are both kept.
"""

from __future__ import annotations

from collections.abc import Sequence

from anpr.recognition.types import Box, Detection, PlateResult

# Two boxes are on one line when their vertical spans share this share of the lower box's height ...
_LINE_OVERLAP = 0.6
# ... and their heights differ by no more than this factor.
_HEIGHT_RATIO = 1.6
# A union is read only when it is this much wider than its widest member (else it adds nothing to read).
_WIDER_BY = 1.2
# A union this elongated (width / height) is not one plate.
_MAX_ASPECT = 8.0
# Boxes overlapping by this share of the smaller one are of the same plate when one's text is part of the other's.
_SAME_PLATE_OVERLAP = 0.5
# A box with this share of its area inside another lies within it.
_INSIDE = 0.8
# The most boxes of one chain that are read (a plate's whole box and a few partial ones).
_BOXES_PER_CHAIN = 4


def _on_one_line(a: Box, b: Box) -> bool:
    """Overlapping boxes of similar height sharing most of their vertical span: pieces of one text line."""
    low, high = sorted((a.height, b.height))
    if low <= 0 or high > _HEIGHT_RATIO * low:
        return False
    shared = min(a.y2, b.y2) - max(a.y, b.y)
    return shared >= _LINE_OVERLAP * low and min(a.x2, b.x2) > max(a.x, b.x)


def _union(boxes: Sequence[Box]) -> Box:
    x1, y1 = min(b.x for b in boxes), min(b.y for b in boxes)
    x2, y2 = max(b.x2 for b in boxes), max(b.y2 for b in boxes)
    return Box(x1, y1, x2 - x1, y2 - y1)


def _chain_indices(boxes: Sequence[Box]) -> list[list[int]]:
    """Indices of ``boxes`` (best first) grouped into chains that overlap on one line, each chain in the given
    order, the chains in the order of their first members."""
    parent = list(range(len(boxes)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, a in enumerate(boxes):
        for j in range(i + 1, len(boxes)):
            if _on_one_line(a, boxes[j]):
                parent[max(root(i), root(j))] = min(root(i), root(j))  # the root is the chain's first member
    chains: dict[int, list[int]] = {}
    for i in range(len(boxes)):
        chains.setdefault(root(i), []).append(i)
    return [chains[r] for r in sorted(chains)]


def line_chains(detections: Sequence[Detection]) -> list[list[Detection]]:
    """``detections`` (best first) grouped into chains of boxes that overlap on one line, each chain best first,
    the chains in the order of their best members."""
    return [[detections[i] for i in chain] for chain in _chain_indices([d.box for d in detections])]


def fragment_union(chain: Sequence[Detection]) -> Detection | None:
    """The union box of a chain of pieces (:func:`line_chains`), to read besides them; None when it adds nothing:
    a single box, a union no wider than its widest member, or one too elongated for a plate.

    The union carries the chain's best confidence and class.
    """
    if len(chain) < 2:
        return None
    box = _union([m.box for m in chain])
    if box.width < _WIDER_BY * max(m.box.width for m in chain) or box.width > _MAX_ASPECT * box.height:
        return None
    best = max(chain, key=lambda m: m.confidence)
    return Detection(box, best.confidence, best.class_id)


def select_for_reading(detections: Sequence[Detection], limit: int) -> list[Detection]:
    """The boxes to read of ``detections`` (best first): the boxes of the ``limit`` best chains, then the chains'
    unions. The limit counts plates, not boxes: a plate's pieces and partial boxes cannot push another plate, or
    the whole box of the same plate, out of the reading.

    Reading stays bounded: at most :data:`_BOXES_PER_CHAIN` boxes of a chain (its best), and no further chain once
    twice ``limit`` boxes are taken (a frame full of overlapping text lines is read less far, not for longer).
    """
    chains: list[list[Detection]] = []
    taken = 0
    for chain in line_chains(detections):
        if len(chains) == limit or taken >= 2 * limit:
            break
        chains.append(chain[:_BOXES_PER_CHAIN])
        taken += len(chains[-1])
    unions = [u for u in (fragment_union(c) for c in chains) if u is not None]
    kept = sorted((d for c in chains for d in c), key=lambda d: -d.confidence)
    return kept + unions


def _part_of(part: str, whole: str) -> bool:
    """``part`` is empty or appears in ``whole`` with at most one character different (exactly, when short)."""
    if not part:
        return True
    if len(part) > len(whole):
        return False
    allowed = 1 if len(part) >= 3 else 0
    return any(
        sum(x != y for x, y in zip(part, whole[i : i + len(part)], strict=True)) <= allowed
        for i in range(len(whole) - len(part) + 1)
    )


def _rank(plate: PlateResult) -> tuple[bool, int, float]:
    reading = plate.reading
    return reading.format is not None, len(reading.text), reading.confidence


def _duplicate(kept: PlateResult, other: PlateResult) -> bool:
    """``other`` (ranked below ``kept``) reads part of the plate that ``kept`` reads whole."""
    inter = kept.box.intersection(other.box)
    smaller = min(kept.box.area, other.box.area)
    if smaller <= 0 or inter <= 0:
        return False
    if inter >= _SAME_PLATE_OVERLAP * smaller and _part_of(other.reading.text, kept.reading.text):
        return True
    inside = inter >= _INSIDE * other.box.area
    return inside and kept.reading.format is not None and other.reading.format is None


def drop_partial_duplicates(plates: Sequence[PlateResult]) -> list[int]:
    """Indices of the ``plates`` to keep, in their given order."""
    order = sorted(range(len(plates)), key=lambda i: _rank(plates[i]), reverse=True)
    kept: list[int] = []
    for i in order:
        if not any(_duplicate(plates[k], plates[i]) for k in kept):
            kept.append(i)
    return sorted(kept)


def keep_plates(plates: Sequence[PlateResult], limit: int) -> list[int]:
    """Indices of the ``plates`` to return, best detection first: partial duplicates dropped, then at most
    ``limit`` plates. The limit ranks a plate by its chain's best box (:func:`line_chains`), so a plate read whole
    from a weaker box of it is not dropped for the stronger partial box it replaced."""
    order = sorted(range(len(plates)), key=lambda i: -plates[i].detection_confidence)
    rank = {
        order[position]: chain_rank
        for chain_rank, chain in enumerate(_chain_indices([plates[i].box for i in order]))
        for position in chain
    }
    survivors = drop_partial_duplicates(plates)
    taken = sorted(survivors, key=lambda i: (rank[i], -plates[i].detection_confidence))[:limit]
    return sorted(taken, key=lambda i: -plates[i].detection_confidence)
