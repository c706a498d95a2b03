"""Plate regions: the countries (ISO 3166-1 alpha-2, ``ZA``) and subdivisions (ISO 3166-2, ``ZA-WC``) whose plates a
camera or a deployment expects. Ingest checks a camera's regions with these rules when it is registered, recognize
the regions of every image and its own default; both keep the normalised form.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from anpr.runtime.errors import InvalidArgument

_REGION = re.compile(r"[A-Z]{2}(?:-[A-Z0-9]{1,3})?")
MAX_REGIONS = 8


def normalise_regions(values: Iterable[str], field: str) -> tuple[str, ...]:
    """``values`` upper-cased, without repeats, in their order; :class:`InvalidArgument` naming ``field`` for a
    code that is not ``CC`` or ``CC-SUB`` or for more than :data:`MAX_REGIONS`."""
    out: list[str] = []
    for value in values:
        code = value.upper()
        # fullmatch: a trailing newline must not pass as "$" would let it.
        if not _REGION.fullmatch(code):
            raise InvalidArgument(
                f"{field}: {value[:16]!r} is not a plate region; use an ISO 3166-1 country such as ZA or an "
                "ISO 3166-2 subdivision such as ZA-WC"
            )
        if code not in out:
            out.append(code)
    if len(out) > MAX_REGIONS:
        raise InvalidArgument(f"{field}: at most {MAX_REGIONS} plate regions, not {len(out)}")
    return tuple(out)
