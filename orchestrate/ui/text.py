"""Formatting shared by every view; no Rich, so plain output stays light."""

from __future__ import annotations

import time


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s" if secs else f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if minutes else f"{hours}h"


def ago(at: float | None, now: float) -> str:
    """How long ago, shortly: 12s ago, 5m ago, 3h ago, else the date."""
    if at is None:
        return ""
    seconds = max(0.0, now - at)
    if seconds < 60:
        return f"{int(seconds)}s ago"
    if seconds < 3600:
        return f"{int(seconds // 60)}m ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)}h ago"
    return time.strftime("%Y-%m-%d", time.localtime(at))
