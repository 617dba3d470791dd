"""Durations as people read them on a terminal: "42 s", "17 min", "2.3 h"."""

from __future__ import annotations


def duration(seconds: float) -> str:
    """Seconds below 90, minutes below 90 minutes, hours above (one decimal)."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
