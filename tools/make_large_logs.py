"""Synthetic logs with the shape of the two public full-size files, for measuring loading time and memory.

Neither file is real data; both are seeded (the same command writes byte-identical files) and shaped after
the published statistics of the originals:

* ``taobao/UserBehavior.csv``: a 10M-row sample of Taobao UserBehavior (no header; user, item, category,
  pv/buy/cart/fav, unix seconds of 2017-11-25 .. 2017-12-03): 987,994 user ids, 4,162,024 items in 9,439
  categories, 89.5% pv, 5.5% cart, 2.9% fav, 2.0% buy; rows grouped by user, in time order.
* ``tmall/user_log_format1.csv`` (+ ``user_info_format1.csv``): IJCAI-15's shape: 54,925,330 rows,
  424,170 users, 1,090,390 items, 1,658 categories, 4,995 sellers, 8,444 brands (0.17% of rows without a
  brand), mmdd days 0511 .. 1112 with the Double-11 peak, 88.4% clicks, 0.14% add-to-cart, 6.0% purchases,
  5.5% add-to-favourites; about 1.9 GB (the original: 1.66 GB).

Item popularity is Zipf-like and users' row counts are heavy-tailed, as in the originals, so that
deduplication, the item 5-core and user sampling do real work.

    python tools/make_large_logs.py --out /tmp/large              # both, full size (about 2 minutes)
    python tools/make_large_logs.py --out /tmp/small --scale 0.001 --which tmall
    python -m bench data stats --dataset tmall --data /tmp/large/tmall --profile cpu --results-dir /tmp/r
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

CHUNK_USERS = 20_000
"""Users generated and written per chunk: a few million rows, so memory stays small at any scale."""


def _popular_items(rng: np.random.Generator, n: int, n_items: int) -> np.ndarray:
    """(n,) item indices in [0, n_items): half log-uniform (Zipf with exponent 1: a long head of popular
    items), half uniform (the long tail that the item 5-core prunes)."""
    zipf = np.floor(np.exp(rng.random(n) * np.log(n_items + 1))).astype(np.int64) - 1
    return np.where(rng.random(n) < 0.5, zipf, rng.integers(0, n_items, n))


def _row_counts(rng: np.random.Generator, n_users: int, total: int) -> np.ndarray:
    """(n_users,) heavy-tailed (lognormal) row counts, each >= 1, summing to ``total`` exactly."""
    weights = rng.lognormal(0.0, 1.2, n_users)
    counts = np.maximum(1, np.floor(weights / weights.sum() * total)).astype(np.int64)
    gap = total - int(counts.sum())
    if gap > 0:
        np.add.at(counts, rng.integers(0, n_users, gap), 1)
    elif gap < 0:  # flooring at 1 overshot (tiny scales): take the surplus from the heaviest users
        heaviest = np.argsort(-counts, kind="stable")
        while gap < 0:
            take = np.minimum(counts[heaviest] - 1, -gap)
            counts[heaviest[0]] -= take[0]
            gap += int(take[0])
            heaviest = np.argsort(-counts, kind="stable")
    return counts


def _chunks(counts: np.ndarray) -> Iterator[tuple[int, int]]:
    for start in range(0, len(counts), CHUNK_USERS):
        yield start, min(start + CHUNK_USERS, len(counts))


def _write(path: Path, tables: Iterator[pa.Table], header: bool) -> int:
    """Write tables one after another into one CSV (atomically: a temporary name, then rename)."""
    tmp = path.with_name(path.name + ".tmp")
    rows = 0
    with open(tmp, "wb") as fh:
        for i, table in enumerate(tables):
            if header and i == 0:  # unquoted, as in the originals (pyarrow quotes header names)
                fh.write((",".join(table.column_names) + "\n").encode())
            pacsv.write_csv(table, fh, pacsv.WriteOptions(include_header=False, quoting_style="none"))
            rows += table.num_rows
    tmp.replace(path)
    return rows


def taobao(out: Path, scale: float, seed: int) -> Path:
    """``UserBehavior.csv`` with the shape of a 10M-row sample of Taobao UserBehavior."""
    rng = np.random.default_rng([seed, 1])
    rows, n_users, n_items, n_cats = (max(1, round(x * scale)) for x in (10_000_000, 987_994, 4_162_024, 9_439))
    item_ids = rng.permutation(np.arange(1, 5_163_070))[:n_items]  # real ids are sparse in [1, 5.16M]
    item_cat = rng.permutation(np.arange(1, 5_162_430))[:n_cats][rng.integers(0, n_cats, n_items)]
    user_ids = np.sort(rng.choice(np.arange(1, 1_018_012), n_users, replace=False))
    counts = _row_counts(rng, n_users, rows)
    start_s = int(datetime.datetime(2017, 11, 25, tzinfo=datetime.UTC).timestamp())
    span = 9 * 86400
    behaviors = np.array(["pv", "cart", "fav", "buy"])

    def tables() -> Iterator[pa.Table]:
        for lo, hi in _chunks(counts):
            n = int(counts[lo:hi].sum())
            user = np.repeat(user_ids[lo:hi], counts[lo:hi])
            item = _popular_items(rng, n, n_items)
            ts = start_s + rng.integers(0, span, n)
            order = np.lexsort((ts, user))  # grouped by user, in time order
            kind = rng.choice(4, n, p=[0.895, 0.055, 0.029, 0.021])
            yield pa.table({"user": user[order], "item": item_ids[item][order], "category": item_cat[item][order],
                            "behavior": behaviors[kind][order], "ts": ts[order]})  # fmt: skip

    folder = out / "taobao"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "UserBehavior.csv"
    _write(path, tables(), header=False)
    return path


def _tmall_days(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n,) mmdd stamps from 0511 to 1112; about a fifth of the rows fall on 1111 (Double 11)."""
    first = datetime.date(2015, 5, 11)
    days = (datetime.date(2015, 11, 12) - first).days + 1
    weights = np.ones(days)
    weights[(datetime.date(2015, 11, 11) - first).days] = days * 0.25  # the peak: ~20% of all rows
    weights[(datetime.date(2015, 11, 1) - first).days : (datetime.date(2015, 11, 11) - first).days] = 3.0
    mmdd = np.array([int((first + datetime.timedelta(d)).strftime("%m%d")) for d in range(days)])
    return mmdd[rng.choice(days, n, p=weights / weights.sum())]


def tmall(out: Path, scale: float, seed: int) -> Path:
    """``user_log_format1.csv`` and ``user_info_format1.csv`` with IJCAI-15's shape."""
    rng = np.random.default_rng([seed, 2])
    rows, n_users, n_items = (max(1, round(x * scale)) for x in (54_925_330, 424_170, 1_090_390))
    n_cats, n_sellers, n_brands = (max(1, round(x * scale)) for x in (1_658, 4_995, 8_444))
    item_cat = rng.integers(1, n_cats + 1, n_items)
    item_seller = rng.integers(1, n_sellers + 1, n_items)
    item_brand = rng.integers(1, n_brands + 1, n_items).astype(np.float64)
    item_brand[rng.random(n_items) < 0.0017] = np.nan  # the original has rows without a brand
    item_ids = rng.permutation(np.arange(1, n_items + 1))
    user_ids = rng.permutation(np.arange(1, n_users + 1))  # grouped by user, users in no particular order
    counts = _row_counts(rng, n_users, rows)

    def tables() -> Iterator[pa.Table]:
        for lo, hi in _chunks(counts):
            n = int(counts[lo:hi].sum())
            user = np.repeat(user_ids[lo:hi], counts[lo:hi])
            item = _popular_items(rng, n, n_items)
            day = _tmall_days(rng, n)
            order = np.lexsort((day, np.repeat(np.arange(lo, hi), counts[lo:hi])))
            action = rng.choice(4, n, p=[0.8840, 0.0014, 0.0599, 0.0547])
            brand = pa.array(item_brand[item][order], mask=np.isnan(item_brand[item][order])).cast(pa.int64())
            yield pa.table({"user_id": user[order], "item_id": item_ids[item][order], "cat_id": item_cat[item][order],
                            "seller_id": item_seller[item][order], "brand_id": brand, "time_stamp": day[order],
                            "action_type": action[order]})  # fmt: skip

    folder = out / "tmall"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "user_log_format1.csv"
    _write(path, tables(), header=True)
    age = pa.array(rng.integers(0, 9, n_users), mask=rng.random(n_users) < 0.005)
    gender = pa.array(rng.integers(0, 3, n_users), mask=rng.random(n_users) < 0.015)
    _write(folder / "user_info_format1.csv", iter([pa.table({"user_id": np.sort(user_ids), "age_range": age, "gender": gender})]), header=True)
    return path


MAKERS = {"taobao": taobao, "tmall": tmall}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder to write taobao/ and tmall/ into")
    parser.add_argument("--which", default="taobao,tmall", help="comma-separated: taobao, tmall")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the full size (rows, users, items)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    which = [w.strip() for w in args.which.split(",") if w.strip()]
    unknown = [w for w in which if w not in MAKERS]
    if unknown or not 0 < args.scale <= 1:
        print(f"error: --which takes taobao, tmall (got {', '.join(unknown)}); --scale is in (0, 1]", file=sys.stderr)
        return 2
    for name in which:
        started = time.perf_counter()
        path = MAKERS[name](args.out, args.scale, args.seed)
        print(f"{path}: {path.stat().st_size / 1e9:.2f} GB in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
