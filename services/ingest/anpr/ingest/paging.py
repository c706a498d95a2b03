"""Page sizes of ingest listings; page tokens are the runtime's signed ones (:mod:`anpr.runtime.page_tokens`)."""

from __future__ import annotations

from anpr.runtime.page_tokens import decode_token, encode_token

__all__ = ["DEFAULT_PAGE_SIZE", "MAX_PAGE_SIZE", "decode_token", "encode_token", "page_size"]

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


def page_size(requested: int) -> int:
    """The page size to use for a requested one (0 = default; large values capped)."""
    return DEFAULT_PAGE_SIZE if requested <= 0 else min(requested, MAX_PAGE_SIZE)
