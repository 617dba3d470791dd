from __future__ import annotations

import sys

import pytest
from tqdm import tqdm

from bench.runner import say, warn

LINE = "study: rclrec's grid has ended"


def _drawn_bar() -> tqdm:
    return tqdm(total=3, desc="jobs", file=sys.stderr, disable=False)


def test_a_line_said_while_a_bar_is_drawn_goes_above_the_bar(capsys: pytest.CaptureFixture[str]) -> None:
    """The study says "rclrec's grid has ended" between jobs, while the jobs bar is on the terminal: the bar
    is cleared, the line written, the bar drawn again (a plain print wrote into the bar's line)."""
    bar = _drawn_bar()
    capsys.readouterr()  # the bar as first drawn
    say(LINE)
    out, err = capsys.readouterr()
    bar.close()
    assert out == LINE + "\n"
    assert err.startswith("\r") and "jobs:" in err  # cleared, then drawn again


def test_a_warning_while_a_bar_is_drawn_goes_above_the_bar(capsys: pytest.CaptureFixture[str]) -> None:
    bar = _drawn_bar()
    capsys.readouterr()
    warn(LINE)
    _, err = capsys.readouterr()
    bar.close()
    cleared, _, redrawn = err.partition(LINE + "\n")
    assert cleared.startswith("\r") and "jobs:" not in cleared and "jobs:" in redrawn
