"""tools/make_large_logs.py: seeded, exactly the requested shape, readable by the loaders."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd

from bench.data.loaders import load
from tests.conftest import REPO


def _make(out: Path, *args: str) -> None:
    subprocess.run([sys.executable, str(REPO / "tools" / "make_large_logs.py"), "--out", str(out), *args],
                   check=True, capture_output=True)  # fmt: skip


def test_same_command_same_bytes_and_the_published_shape(tmp_path: Path) -> None:
    _make(tmp_path / "a", "--scale", "0.0005")
    _make(tmp_path / "b", "--scale", "0.0005")
    for name in ("tmall/user_log_format1.csv", "tmall/user_info_format1.csv", "taobao/UserBehavior.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    tmall = pd.read_csv(tmp_path / "a" / "tmall" / "user_log_format1.csv")
    assert len(tmall) == round(54_925_330 * 0.0005) and tmall["user_id"].nunique() == round(424_170 * 0.0005)
    assert set(tmall["action_type"]) == {0, 1, 2, 3}
    assert 0.05 < (tmall["action_type"] == 2).mean() < 0.07  # IJCAI-15's 6% purchases
    taobao = load("taobao", tmp_path / "a" / "taobao")
    assert len(taobao.interactions) == round(10_000_000 * 0.0005)


def test_bad_arguments_are_one_line(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(REPO / "tools" / "make_large_logs.py"), "--out", str(tmp_path), "--which", "movielens"],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "movielens" in done.stderr
