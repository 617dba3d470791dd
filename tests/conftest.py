"""Shared fixtures: tiny hand-built logs and the path to ../shared/data."""

from __future__ import annotations

# isort: off
import bench  # noqa: F401 - first: pins OpenBLAS's kernel before numpy loads it (bench.blas), as the CLI does
# isort: on
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.data.log import BEHAVIORS, Log
from bench.data.split import Split, SplitConfig, build_split

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


def make_log(rows: list[tuple[object, object, str, int]], items: pd.DataFrame | None = None) -> Log:
    """A Log from (user, item, behavior name, timestamp) rows, in file order."""
    frame = pd.DataFrame(rows, columns=["user", "item", "behavior", "timestamp"])
    frame["behavior"] = frame["behavior"].map(BEHAVIORS.index).astype("int8")
    frame["order"] = range(len(frame))
    empty = pd.DataFrame(index=pd.Index([], name="id"))
    return Log(frame, items if items is not None else empty, empty, "test-log")


def cycle_split(pattern: str = "next", buys: tuple[int, ...] = (9, 11), seconds_per_step: int = 1) -> Split:
    """The deterministic toy of the learnability tests: 300 users, 12 events each, buys at ``buys``.

    ``pattern="next"``: item = last item + 1 (mod 30), from a random start (chance Recall@10 1/3).
    ``pattern="group"``: each user cycles through one of six groups of five items, for models with no
    exact order (chance Recall@10 1/3 as well)."""
    rng = np.random.default_rng(0)
    rows = []
    for u in range(300):
        if pattern == "next":
            start = int(rng.integers(0, 30))
            items = [(start + t) % 30 for t in range(12)]
        else:
            group, start = int(rng.integers(0, 6)), int(rng.integers(0, 5))
            items = [5 * group + (start + t) % 5 for t in range(12)]
        rows += [(f"u{u}", f"i{it}", "buy" if t in buys else "click", seconds_per_step * t) for t, it in enumerate(items)]
    return build_split(make_log(rows), SplitConfig(min_history=3, max_history=10))


def shared_data(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"{path} is absent: the real-data tests need ../shared/data beside the checkout")
    return path


@pytest.fixture
def write(tmp_path: Path):
    """write(name, text) → path of a file with that text in a fresh temp folder."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    return _write
