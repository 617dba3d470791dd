"""Preprocessing: pure functions Log → Log, applied in a fixed order by :func:`preprocess`."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bench import memory
from bench.data.log import BUY, Log


@dataclass(frozen=True)
class PreprocessConfig:
    """What is done to a log before it is split. Part of the split's cache key."""

    dedup: bool = True
    """Drop exact repeats of (user, item, behavior, timestamp), keeping the first in file order."""
    item_min_count: int = 1
    """Item k-core: drop items with fewer interactions than this (1 keeps every item)."""
    max_users: int | None = None
    """Keep at most this many users (seeded sample; users with a conversion are kept first)."""
    target_buy_share: float | None = None
    """Add users without any conversion until conversions are this share of rows (paper: ~0.0095)."""
    sample_seed: int = 0


DEDUP_KEY = ("user", "item", "behavior", "timestamp")


def dedup(log: Log) -> Log:
    """Drop exact repeats of (user, item, behavior, timestamp), keeping the first in file order."""
    keep = ~duplicated(log.interactions, DEDUP_KEY)
    return log.with_interactions(log.interactions[keep], "duplicates")


def duplicated(frame: pd.DataFrame, columns: tuple[str, ...]) -> np.ndarray:
    """(N,) bool, True on every row that repeats an earlier row's ``columns``.

    ``DataFrame.duplicated`` factorizes every column into int64 codes first: about 4 GB of temporaries for
    the 55M-row Tmall log. Integer columns are instead packed into one int64 key (mixed radix over each
    column's range, a column's common step divided out: Tmall's day stamps are multiples of 86,400 s), so
    one hash pass over 8 bytes a row does it; if the ranges do not fit in 63 bits, a stable sort on the
    columns finds the same rows.
    """
    radix, parts = 1, []
    for name in columns:
        values = frame[name].to_numpy()
        if values.dtype.kind not in "iu" or len(values) == 0:
            return frame.duplicated(list(columns), keep="first").to_numpy()
        low, high = int(values.min()), int(values.max())
        step = int(np.gcd.reduce(_offsets(values, low, high))) or 1
        span = (high - low) // step + 1
        parts.append((values, low, step, span))
        radix *= span
    if radix >= 2**63:
        return _duplicated_by_sort(frame, columns)
    key = np.zeros(len(frame), dtype=np.int64)
    for values, low, step, span in parts:  # in place: one temporary, in the column's own width, at a time
        digit = _offsets(values, low, low + (span - 1) * step)
        if step > 1:
            digit //= step
        key *= span
        key += digit
        del digit
    # Equal keys fall in the same key range, so each range is deduplicated on its own: a hash table of a
    # few million keys instead of one of every row (less memory, and it stays in cache).
    out = np.zeros(len(key), dtype=bool)
    chunks = -(-len(key) // DEDUP_CHUNK_ROWS)
    bounds = [radix * i // chunks for i in range(chunks + 1)]  # Python ints: exact up to 2^63
    for low, high in zip(bounds[:-1], bounds[1:]):
        rows = np.flatnonzero((key >= low) & (key < high)) if chunks > 1 else slice(None)
        out[rows] = pd.Series(key[rows], copy=False).duplicated(keep="first").to_numpy()
    return out


DEDUP_CHUNK_ROWS = 4_000_000
"""Rows per hash table in :func:`duplicated` (on average: the key ranges are of equal width)."""


def _offsets(values: np.ndarray, low: int, high: int) -> np.ndarray:
    """values - low, in the column's own dtype where the difference fits (half the memory of int64 for
    the int32 columns of the public logs), else in int64."""
    if high - low <= np.iinfo(values.dtype).max:
        return values - values.dtype.type(low)
    return values.astype(np.int64) - low


def _duplicated_by_sort(frame: pd.DataFrame, columns: tuple[str, ...]) -> np.ndarray:
    """:func:`duplicated` by a stable lexicographic sort: within a run of equal rows the first in file order
    comes first, and every later one is a repeat."""
    order = np.lexsort([frame[c].to_numpy() for c in reversed(columns)])
    same = np.ones(max(len(order) - 1, 0), dtype=bool)
    for name in columns:
        values = frame[name].to_numpy()[order]
        same &= values[1:] == values[:-1]
    out = np.zeros(len(order), dtype=bool)
    out[order[1:]] = same
    return out


def item_kcore(log: Log, k: int) -> Log:
    """Keep items with at least ``k`` interactions. Removing an item never changes another item's count,
    so one pass reaches the fixed point of the item-side k-core."""
    if k <= 1:
        return log
    counts = log.interactions["item"].value_counts()
    keep = log.interactions["item"].isin(counts.index[counts >= k])
    return log.with_interactions(log.interactions[keep], "item_kcore")


def sample_users(log: Log, max_users: int | None, target_buy_share: float | None, seed: int) -> Log:
    """Seeded user sampling.

    Users with at least one conversion come first (in a seeded random order), then users without; with
    ``target_buy_share`` the converting users are all kept and non-converting users are added until the
    conversion share falls to the target (it cannot rise above the share among converting users alone).
    """
    frame = log.interactions
    if max_users is None and target_buy_share is None:
        return log
    rng = np.random.default_rng(seed)
    # Rows and purchases per user, users in sorted order, in two bincounts (a per-user Python call took
    # 32 s of 46 on a 10M-row Taobao file; this takes a fraction of a second).
    codes, users = pd.factorize(frame["user"], sort=True)
    rows_per_user = np.bincount(codes, minlength=len(users))
    buys_per_user = np.bincount(codes, weights=(frame["behavior"].to_numpy() == BUY), minlength=len(users)).astype(np.int64)
    per_user = pd.DataFrame({"rows": rows_per_user, "buys": buys_per_user}, index=pd.Index(users, name="user"))
    buyers = per_user.index[per_user["buys"] > 0].to_numpy()
    others = per_user.index[per_user["buys"] == 0].to_numpy()
    buyers, others = buyers[rng.permutation(len(buyers))], others[rng.permutation(len(others))]
    if target_buy_share is None:
        chosen = np.concatenate([buyers, others])
    else:
        rows = per_user.loc[buyers, "rows"].sum()
        buys = per_user.loc[buyers, "buys"].sum()
        extra_rows = np.cumsum(per_user.loc[others, "rows"].to_numpy())
        # Smallest prefix of non-buyers whose rows bring buys/rows down to the target.
        needed = int(np.searchsorted(-(buys / (rows + extra_rows)), -target_buy_share)) + 1
        chosen = np.concatenate([buyers, others[: min(needed, len(others))]])
    if max_users is not None:
        chosen = chosen[:max_users]
    return log.with_interactions(frame[frame["user"].isin(chosen)], "user_sampling")


def preprocess(log: Log, cfg: PreprocessConfig) -> Log:
    """Apply the configured steps in order: dedup → item k-core → user sampling."""
    rows = f"{len(log.interactions):,} rows"
    if cfg.dedup:
        with memory.step(f"removing duplicate rows from {rows}"):
            log = dedup(log)
    with memory.step(f"the item {cfg.item_min_count}-core of {rows}"):
        log = item_kcore(log, cfg.item_min_count)
    with memory.step(f"sampling users from {rows}"):
        log = sample_users(log, cfg.max_users, cfg.target_buy_share, cfg.sample_seed)
    dropped = {step: 0 for step in ("bad_timestamps", "duplicates", "item_kcore", "user_sampling")} | dict(log.preparation.get("dropped", {}))
    return dataclasses.replace(log, preparation={**log.preparation, "dropped": dropped})


def buy_share(interactions: pd.DataFrame) -> float:
    return float((interactions["behavior"] == BUY).mean()) if len(interactions) else 0.0


def describe_preparation(preparation: Mapping[str, Any]) -> list[str]:
    """The preparation record as lines for a person: what was dropped (every step, zeros included, so a
    missing line never hides a step), side-file coverage, warnings."""
    lines = []
    dropped = preparation.get("dropped", {})
    if dropped:
        lines.append("dropped " + ", ".join(f"{n:,} rows ({step.replace('_', ' ')})" for step, n in dropped.items()))
    for side, share in preparation.get("coverage", {}).items():
        lines.append(f"{side} describes {100 * share:.1f}% of the log's ids")
    lines += [f"warning: {w}" for w in preparation.get("warnings", [])]
    return lines
