"""The one rule for a stated purpose (POPIA purpose specification), shared by every audited lookup.

A purpose is the reason an auditor reads later, so it must be words, not a token gesture: "." or an invisible
zero-width space passed a "non-blank" check. After trimming, a purpose must hold at least
:data:`MIN_PURPOSE_ALNUM` letters or digits, consist of printable characters only (no control, format or
private-use characters, no line or paragraph separators; plain spaces allowed) and be at most
:data:`MAX_PURPOSE_CHARS` long. Case references are optional, printable and shorter.
"""

from __future__ import annotations

import unicodedata

from anpr.runtime.errors import InvalidArgument

MIN_PURPOSE_ALNUM = 6
MAX_PURPOSE_CHARS = 1000
MAX_CASE_REFERENCE_CHARS = 200

# Unicode categories that print nothing a reader can see or that break a line: control (Cc), format (Cf, e.g.
# zero-width space and bidi overrides), surrogate (Cs), private use (Co), unassigned (Cn), line and paragraph
# separators (Zl, Zp).
_INVISIBLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def _printable(value: str) -> bool:
    return all(unicodedata.category(c) not in _INVISIBLE for c in value)


def check_purpose(purpose: str, case_reference: str = "") -> tuple[str, str]:
    """The trimmed purpose and case reference, or INVALID_ARGUMENT saying what is missing."""
    text = purpose.strip()
    if len(text) > MAX_PURPOSE_CHARS:
        raise InvalidArgument(f"purpose must have at most {MAX_PURPOSE_CHARS} characters")
    if not _printable(text):
        raise InvalidArgument("purpose must consist of printable characters")
    if sum(1 for c in text if unicodedata.category(c)[0] in "LN") < MIN_PURPOSE_ALNUM:
        raise InvalidArgument(
            f"purpose is required: state why the lookup is made in words (at least {MIN_PURPOSE_ALNUM} letters "
            "or digits)"
        )
    reference = case_reference.strip()
    if len(reference) > MAX_CASE_REFERENCE_CHARS:
        raise InvalidArgument(f"case_reference must have at most {MAX_CASE_REFERENCE_CHARS} characters")
    if not _printable(reference):
        raise InvalidArgument("case_reference must consist of printable characters")
    return text, reference
