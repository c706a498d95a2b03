"""Page sizes of hotlist listings; page tokens are the runtime's signed ones (:mod:`anpr.runtime.page_tokens`)."""

from __future__ import annotations

from anpr.runtime.page_tokens import decode_token, encode_token

__all__ = ["decode_token", "encode_token", "page_size"]


def page_size(requested: int, default: int, maximum: int) -> int:
    """The effective page size: the default for 0, capped at the maximum."""
    return default if requested <= 0 else min(requested, maximum)
