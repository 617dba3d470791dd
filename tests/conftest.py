"""Shared fixtures: tiny hand-built logs and the path to ../shared/data."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from bench.data.log import BEHAVIORS, Log

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


def make_log(rows: list[tuple[object, object, str, int]], items: pd.DataFrame | None = None) -> Log:
    """A Log from (user, item, behavior name, timestamp) rows, in file order."""
    frame = pd.DataFrame(rows, columns=["user", "item", "behavior", "timestamp"])
    frame["behavior"] = frame["behavior"].map(BEHAVIORS.index).astype("int8")
    frame["order"] = range(len(frame))
    empty = pd.DataFrame(index=pd.Index([], name="id"))
    return Log(frame, items if items is not None else empty, empty, "test-log")


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
