from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from bench.data.loaders import load
from bench.data.log import BEHAVIORS
from bench.errors import BenchError
from tests.conftest import shared_data

CLICK, FAV, CART, BUY = (BEHAVIORS.index(b) for b in ("click", "fav", "cart", "buy"))

CSV = "user_id,item_id,behavior,timestamp\nu1,a,click,100\nu1,b,cart,100\nu1,b,buy,200\nu2,a,fav,2019-06-16T00:00:00Z\n"
TMALL = (
    "user_id,item_id,cat_id,seller_id,brand_id,time_stamp,action_type\n"
    "1,10,5,7,3,511,0\n1,10,5,7,3,511,1\n1,11,5,7,,1111,2\n2,12,6,8,4,601,3\n"
)
TAOBAO = "1,100,9,pv,1511544070\n1,100,9,cart,1511544080\n1,101,9,buy,1511544090\n2,100,9,fav,1511544100\n"


def test_csv_canonical(write) -> None:
    path = write("d/interactions.csv", CSV)
    write("d/items.csv", "item_id,category\na,x\nb,y\n")
    log = load("csv", path.parent)
    i = log.interactions
    assert list(i["behavior"]) == [CLICK, CART, BUY, FAV]
    assert list(i["order"]) == [0, 1, 2, 3]
    assert i["timestamp"].iloc[3] == 1560643200  # ISO date → unix seconds
    assert list(log.items.loc[["a", "b"], "category"]) == [0, 1]


def test_tmall_format(write) -> None:
    log = load("tmall", write("user_log_format1.csv", TMALL))
    i = log.interactions
    assert list(i["behavior"]) == [CLICK, CART, BUY, FAV]  # 0 click, 1 cart, 2 buy, 3 fav
    assert i["timestamp"].iloc[0] == 1431302400  # 2015-05-11
    assert i["timestamp"].iloc[2] == 1447200000  # 2015-11-11
    assert log.items.loc[11, "brand"] == -1  # empty brand cell → unknown
    assert set(log.items.columns) == {"category", "brand", "seller"}


def test_tmall_reads_user_info_beside_the_log(write) -> None:
    path = write("t/user_log_format1.csv", TMALL)
    write("t/user_info_format1.csv", "user_id,age_range,gender\n1,3,0\n2,,1\n")
    log = load("tmall", path.parent)
    assert set(log.users.columns) == {"age_range", "gender"}
    assert log.users.loc[2, "age_range"] == -1


def test_taobao_format(write) -> None:
    log = load("taobao", write("UserBehavior.csv", TAOBAO))
    assert list(log.interactions["behavior"]) == [CLICK, CART, BUY, FAV]
    assert list(log.items.columns) == ["category"]


def test_taobao_userbehavior_sample_from_shared_data() -> None:
    path = shared_data("taobao-userbehavior-sample") / "UserBehavior.csv"
    log = load("taobao", path)
    i = log.interactions
    assert len(i) == 4321 and i["user"].nunique() == 43
    assert 0.015 < (i["behavior"] == BUY).mean() < 0.02  # the README's 1.8% buy share
    assert np.all(np.diff(i["order"]) == 1)


def test_one_million_rows_parse_in_seconds(tmp_path: Path) -> None:
    """Not a timing assertion: the fast path (pyarrow) must be taken, so parsing never hits the
    slow diagnostic reader on well-formed input."""
    path = tmp_path / "UserBehavior.csv"
    rng = np.random.default_rng(0)
    n = 200_000
    kinds = np.array(["pv", "fav", "cart", "buy"])[rng.integers(0, 4, n)]
    lines = (f"{u},{i},{c},{k},{t}\n" for u, i, c, k, t in zip(rng.integers(0, 1000, n), rng.integers(0, 5000, n), rng.integers(0, 50, n), kinds, rng.integers(1.5e9, 1.6e9, n)))
    path.write_text("".join(lines))
    import bench.data.loaders as loaders

    called = []
    original = loaders._diagnose
    loaders._diagnose = lambda *a, **k: called.append(1) or original(*a, **k)  # type: ignore[assignment]
    try:
        log = load("taobao", path)
    finally:
        loaders._diagnose = original  # type: ignore[assignment]
    assert len(log.interactions) == n and not called


# ---------------------------------------------------------------- bad input: one class per test


def _error(fmt: str, path: Path | None) -> str:
    with pytest.raises(BenchError) as info:
        load(fmt, path)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_missing_file(tmp_path: Path) -> None:
    assert "no such file" in _error("taobao", tmp_path / "nope.csv")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any file")
def test_unreadable_file(write) -> None:
    path = write("UserBehavior.csv", TAOBAO)
    path.chmod(0)
    assert "cannot be read" in _error("taobao", path)


def test_binary_file_is_not_csv(tmp_path: Path) -> None:
    path = tmp_path / "interactions.csv"
    path.write_bytes(b"\xff\xfe\x00\x01garbage\x00\x9c")
    assert "not a readable CSV" in _error("csv", path)


def test_missing_columns(write) -> None:
    message = _error("csv", write("interactions.csv", "user_id,item_id,timestamp\nu,a,1\n"))
    assert "interactions.csv" in message and "missing column(s) behavior" in message


def test_unknown_behavior_names_line_and_column(write) -> None:
    message = _error("csv", write("interactions.csv", CSV + "u3,c,view,300\n"))
    assert "line 6" in message and "'view'" in message and "'behavior'" in message


def test_unknown_tmall_action_code(write) -> None:
    message = _error("tmall", write("user_log_format1.csv", TMALL + "3,13,6,8,4,601,7\n"))
    assert "line 6" in message and "'action_type'" in message


def test_unparsable_timestamp(write) -> None:
    message = _error("csv", write("interactions.csv", CSV + "u3,c,click,yesterday\n"))
    assert "line 6" in message and "unparsable timestamp 'yesterday'" in message


def test_unparsable_tmall_date(write) -> None:
    message = _error("tmall", write("user_log_format1.csv", TMALL + "3,13,6,8,4,1341,0\n"))
    assert "line 6" in message and "time_stamp" in message


def test_non_integer_id(write) -> None:
    message = _error("taobao", write("UserBehavior.csv", TAOBAO + "x1,100,9,pv,1511544070\n"))
    assert "line 5" in message and "'user_id'" in message and "'x1'" in message


def test_empty_file(write) -> None:
    assert "empty" in _error("csv", write("interactions.csv", ""))


def test_header_only(write) -> None:
    assert "no rows" in _error("csv", write("interactions.csv", "user_id,item_id,behavior,timestamp\n"))


def test_format_needs_a_path() -> None:
    assert "--data" in _error("csv", None)


def test_unknown_format() -> None:
    assert "unknown data format" in _error("parquet", Path("x"))


def test_unreadable_path_that_is_a_folder(tmp_path: Path) -> None:
    (tmp_path / "UserBehavior.csv").mkdir()  # the loader looks for this name inside the folder given
    assert "UserBehavior.csv: not a file" in _error("taobao", tmp_path)
