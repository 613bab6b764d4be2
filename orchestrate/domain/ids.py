"""Run ids: short, unique, sortable by creation time (ULID-like, Crockford base32)."""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def _b32(value: int, length: int) -> str:
    out = []
    for _ in range(length):
        out.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(out))


def new_run_id(now: float | None = None) -> str:
    """10 chars of milliseconds (sorts by time) + 6 random chars: 16 chars, e.g. ``01jd3k9x2mab7qzc``."""
    ms = int((time.time() if now is None else now) * 1000)
    rand = int.from_bytes(os.urandom(4), "big") >> 2  # 30 bits
    return _b32(ms, 10) + _b32(rand, 6)
