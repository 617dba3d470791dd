"""Block-wise reading of the full-size formats: the same log, split and errors as a whole-file read."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.config import Configs
from bench.data import loaders
from bench.data.preprocess import preprocess
from bench.data.split import build_split
from bench.errors import BenchError
from tests.conftest import REPO

# Fingerprints of the split of each generated file as the whole-file reader of commit c87e501 gave them
# (`bench data stats` before block-wise reading existed): reading in blocks must not move a single row.
BEFORE = {("tmall", "cpu"): "c34bfb1845128980", ("taobao", "paper"): "1a562cb7a05f2fb2"}


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("large")
    subprocess.run([sys.executable, str(REPO / "tools" / "make_large_logs.py"), "--out", str(out), "--scale", "0.001"],
                   check=True, capture_output=True)  # fmt: skip
    return out


@pytest.mark.parametrize(("fmt", "profile"), sorted(BEFORE))
def test_blocks_give_the_whole_file_split(logs: Path, fmt: str, profile: str) -> None:
    ds = Configs(()).dataset(fmt, profile, str(logs / fmt), None)
    reader = {"tmall": loaders.load_tmall, "taobao": loaders.load_taobao}[fmt]
    small = reader(logs / fmt, ds.checks, block_bytes=20_000)  # about 50 blocks
    whole = reader(logs / fmt, ds.checks, block_bytes=1 << 30)
    pd.testing.assert_frame_equal(small.interactions, whole.interactions)
    pd.testing.assert_frame_equal(small.items, whole.items)
    assert small.interactions["user"].dtype == np.int32 and small.interactions["behavior"].dtype == np.int8
    split = build_split(preprocess(small, ds.preprocess), ds.split)
    assert split.fingerprint == BEFORE[(fmt, profile)]


def test_first_rows_of_items_are_the_files_first_rows(write) -> None:
    """An item's features come from its first row in the file, even when later blocks disagree, and ids
    outside the bitmap's reach (negative, huge) take the hash lookup with the same result."""
    rows = ["user_id,item_id,cat_id,seller_id,brand_id,time_stamp,action_type"]
    rows += [f"{u},{item},{item * 10 + u},1,1,{511 + u % 20},{u % 4}" for u in range(1, 200) for item in (5, -7, 2**40)]
    path = write("t/user_log_format1.csv", "\n".join(rows) + "\n")
    log = loaders.load_tmall(path, block_bytes=1_000)
    items = log.items.sort_index()
    assert list(items.index) == [-7, 5, 2**40]
    raw = pd.read_csv(path)
    first = raw.drop_duplicates("item_id").set_index("item_id")
    assert list(first.loc[[-7, 5, 2**40], "cat_id"]) == [-69, 51, 2**40 * 10 + 1]
    assert len(log.interactions) == len(raw) and log.interactions["item"].dtype == np.int64


def test_a_bad_cell_in_a_later_block_names_its_line(write) -> None:
    rows = ["user_id,item_id,cat_id,seller_id,brand_id,time_stamp,action_type"]
    rows += [f"{u},{u % 7},1,1,1,601,0" for u in range(5000)]
    rows[4321] = "4320,x9,1,1,1,601,0"  # line 4322 of the file
    with pytest.raises(BenchError, match=r"line 4322: column 'item_id' has 'x9', not a whole number"):
        loaders.load_tmall(write("user_log_format1.csv", "\n".join(rows) + "\n"), block_bytes=2_000)


def test_implausible_timestamps_are_counted_over_every_block(write) -> None:
    rows = [f"{u},{u % 7},1,{'pv' if u % 9 else 'buy'},{1_511_000_000 if u % 1000 else 5}" for u in range(1, 5001)]
    path = write("UserBehavior.csv", "\n".join(rows) + "\n")
    with pytest.raises(BenchError, match=r"line 1000: timestamp '5' .* \(5 such row\(s\)"):
        loaders.load_taobao(path, block_bytes=2_000)
    dropped = loaders.load_taobao(path, loaders.DataChecks(bad_timestamps="drop"), block_bytes=2_000)
    assert dropped.preparation["dropped"]["bad_timestamps"] == 5 and len(dropped.interactions) == 4995
