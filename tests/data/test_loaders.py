from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from bench.data.loaders import DataChecks, load
from bench.data.log import BEHAVIORS
from bench.errors import BenchError
from tests.conftest import shared_data

CLICK, FAV, CART, BUY = (BEHAVIORS.index(b) for b in ("click", "fav", "cart", "buy"))

CSV = "user_id,item_id,behavior,timestamp\nu1,a,click,1560000100\nu1,b,cart,1560000100\nu1,b,buy,1560000200\nu2,a,fav,2019-06-16T00:00:00Z\n"
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


def test_well_formed_rows_take_the_fast_path(tmp_path: Path) -> None:
    """The fast path (pyarrow) must be taken, so parsing never hits the slow diagnostic reader on
    well-formed input (speed itself is for benchmarks, not tests)."""
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


# ---------------------------------------------------------------- plausibility: timestamps and side files

GOOD_CSV = "user_id,item_id,behavior,timestamp\n" + "".join(f"u,i{t},click,{1_600_000_000 + t}\n" for t in range(5))


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("-5", "is at 1969-12-31 23:59:55, outside 1990-01-01"),
        ("32503680000", "is at 3000-01-01 00:00:00, outside"),  # the year 3000
        ("9223372036854775807", "outside"),  # INT64_MAX
        ("123456789012345678901", "is beyond the 64-bit range"),  # 21 digits: would wrap to a negative
    ],
)
def test_implausible_timestamps_name_line_and_column(write, cell: str, message: str) -> None:
    path = write("d/interactions.csv", GOOD_CSV.replace(",1600000003\n", f",{cell}\n"))
    error = _error("csv", path.parent)
    assert f"interactions.csv: line 5: timestamp '{cell}' in column 'timestamp'" in error and message in error


def test_implausible_timestamps_can_be_dropped_and_counted(write) -> None:
    path = write("d/interactions.csv", GOOD_CSV.replace(",1600000003\n", ",-5\n").replace(",1600000001\n", ",4102444800\n"))  # 2100-01-01
    log = load("csv", path.parent, checks=DataChecks(bad_timestamps="drop"))
    assert list(log.interactions["item"]) == ["i0", "i2", "i4"] and list(log.interactions["order"]) == [0, 2, 4]
    assert log.preparation["dropped"]["bad_timestamps"] == 2
    wide = load("csv", path.parent, checks=DataChecks(earliest="1960-01-01", latest="5000-01-01"))
    assert len(wide.interactions) == 5


def test_taobao_timestamps_are_checked_too(write) -> None:
    assert "line 2: timestamp '-1'" in _error("taobao", write("UserBehavior.csv", TAOBAO.replace("1511544080", "-1")))


def test_a_file_with_another_column_count_says_so(write) -> None:
    message = _error("taobao", write("UserBehavior.csv", "1,100,9,pv,1511544070,extra\n"))
    assert "line 1 has 6 columns, expected 5 (user_id, item_id, category, behavior, timestamp)" in message


def test_a_compressed_log_is_named(tmp_path: Path) -> None:
    (tmp_path / "interactions.csv.gz").write_bytes(b"\x1f\x8b")
    assert "interactions.csv.gz is there: decompress it first" in _error("csv", tmp_path)


@pytest.mark.parametrize(
    ("side", "text", "message"),
    [
        ("items.csv", "item_id,category\nx1,a\nx2,b\n", "items.csv: describes 0.0% of the log's 5 ids"),
        ("users.csv", "user_id,age\nsomeone,3\n", "users.csv: describes 0.0% of the log's 1 ids"),
        ("items.csv", "", "items.csv: the file is empty"),
        ("items.csv", "item_id,category\n", "items.csv: the file has a header but no rows"),
    ],
)
def test_side_files_that_do_not_match_are_errors(write, side: str, text: str, message: str) -> None:
    path = write("d/interactions.csv", GOOD_CSV)
    write(f"d/{side}", text)
    assert message in _error("csv", path.parent)


def test_side_file_coverage_is_recorded(write) -> None:
    path = write("d/interactions.csv", GOOD_CSV)
    write("d/items.csv", "item_id,category\ni0,a\ni1,a\ni2,b\n")
    log = load("csv", path.parent)
    assert log.preparation["coverage"] == {"items.csv": 0.6}
    strict = DataChecks(min_feature_coverage=0.9)
    assert "describes 60.0% of the log's 5 ids (at least 90% expected" in str(pytest.raises(BenchError, load, "csv", path.parent, checks=strict).value)


def test_tmall_without_optional_columns_warns(write) -> None:
    log = load("tmall", write("user_log_format1.csv", TMALL.replace(",brand_id", "").replace(",3,5", ",5").replace(",,1111", ",1111").replace(",4,601", ",601")))
    warnings = log.preparation["warnings"]
    assert any("no column 'brand_id'" in w for w in warnings) and any("user_info_format1.csv: not found" in w for w in warnings)
    assert "brand" not in log.items.columns and "category" in log.items.columns
