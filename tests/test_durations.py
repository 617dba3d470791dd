from __future__ import annotations

import pytest

from bench.durations import duration


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.4, "0 s"), (42, "42 s"), (89.4, "89 s"), (90, "2 min"), (1020, "17 min"), (5399, "90 min"),
     (5400, "1.5 h"), (8280, "2.3 h")],
)  # fmt: skip
def test_seconds_then_minutes_then_hours(seconds: float, text: str) -> None:
    assert duration(seconds) == text
