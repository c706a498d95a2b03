"""Giving freed heap memory back to the operating system.

glibc keeps memory that Python or numpy freed in its heaps (and, after large frees, raises its mmap threshold so
that later large blocks come from the heap too). A process that builds a big structure once, such as hotlist's
match index for a million entries, then holds its peak as resident memory: about 160 MB more than the index
itself. ``malloc_trim`` returns those free pages; it is cheap and harmless, and absent outside glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from functools import cache

log = logging.getLogger(__name__)


@cache
def _malloc_trim() -> ctypes._NamedFuncPointer | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS)
        return None


def return_free_memory() -> bool:
    """Ask the C allocator to hand free heap pages back; False where it cannot (not glibc)."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
