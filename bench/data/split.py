"""Conversion-target leave-one-out split, shared by every model and identified by a content fingerprint.

For each user, ordered by (timestamp, original row order):

* the **test target** is the last conversion with at least ``min_history`` earlier interactions;
* the **validation target** is the conversion before it that meets the same condition;
* interactions after the test target are dropped;
* the **training part** is everything strictly before the validation target (before the test target for
  users without one; the whole history for users with no qualifying conversion).

A model sees, for a target at position ``t`` of a user's sequence, only positions ``< t``. Training data
never reaches the validation target, so nothing at or after any target reaches any model input.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.data.log import BEHAVIORS, BUY, Log
from bench.errors import BenchError
from bench.io import write_npz


@dataclass(frozen=True)
class SplitConfig:
    min_history: int = 3
    """A conversion is a target only with at least this many earlier interactions."""
    max_history: int = 50
    """Histories handed to models are the last ``max_history`` interactions before the target."""


@dataclass(frozen=True)
class Targets:
    """Held-out conversions: one row per target.

    Attributes:
        user: (T,) int64 user index.
        pos: (T,) int64 position of the target in the user's sequence (= number of earlier interactions).
        item: (T,) int64 target item index.
        is_repeat: (T,) bool, the user interacted with the target item before (any behavior).
    """

    user: np.ndarray
    pos: np.ndarray
    item: np.ndarray
    is_repeat: np.ndarray

    def __len__(self) -> int:
        return len(self.user)

    def take(self, index: np.ndarray | slice) -> Targets:
        return Targets(self.user[index], self.pos[index], self.item[index], self.is_repeat[index])


@dataclass(frozen=True)
class Histories:
    """A batch of user histories, right-aligned: column ``N - 1`` holds the most recent interaction.

    Attributes:
        users: (B,) int64 user index.
        items: (B, N) int64 item index, -1 where padded.
        behaviors: (B, N) int64 behavior code, -1 where padded.
        timestamps: (B, N) int64 unix seconds, 0 where padded.
        lengths: (B,) int64 number of real interactions (>= 1 for targets, since min_history >= 1).
    """

    users: np.ndarray
    items: np.ndarray
    behaviors: np.ndarray
    timestamps: np.ndarray
    lengths: np.ndarray

    @property
    def mask(self) -> np.ndarray:
        """(B, N) bool, True on real interactions."""
        return self.items >= 0

    def __len__(self) -> int:
        return len(self.users)

    def last(self, n: int) -> Histories:
        """The same users' ``n`` most recent interactions (still right-aligned)."""
        return Histories(self.users, self.items[:, -n:], self.behaviors[:, -n:], self.timestamps[:, -n:],
                         np.minimum(self.lengths, n))  # fmt: skip


@dataclass(frozen=True)
class Split:
    """Every user's interaction sequence (cut after the test target) in CSR form, plus the targets.

    Attributes:
        items, behaviors, timestamps: (E,) per-event arrays, users' sequences concatenated in time order.
        offsets: (U + 1,) int64; user ``u``'s events are ``[offsets[u], offsets[u + 1])``.
        train_end: (U,) int64; the first ``train_end[u]`` events of user ``u`` are training data.
        valid, test: the held-out conversion targets.
        item_ids, user_ids: (I,), (U,) raw ids as strings; index ``i`` is item ``i``.
        item_features, user_features: name → (I,) / (U,) int64 codes (-1 unknown).
        config: the split's configuration.
        fingerprint: hash of all of the above; every result records it.
    """

    items: np.ndarray
    behaviors: np.ndarray
    timestamps: np.ndarray
    offsets: np.ndarray
    train_end: np.ndarray
    valid: Targets
    test: Targets
    item_ids: np.ndarray
    user_ids: np.ndarray
    item_features: Mapping[str, np.ndarray]
    user_features: Mapping[str, np.ndarray]
    config: SplitConfig
    fingerprint: str = field(default="")
    preparation: Mapping[str, Any] = field(default_factory=dict)
    """What loading and preprocessing dropped, side-file coverage and warnings (``Log.preparation`` plus the
    rows after test targets). A record, not an input: not part of the fingerprint."""

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    def histories(self, targets: Targets, max_len: int | None = None) -> Histories:
        """The model inputs for ``targets``: the last ``max_len`` (default ``config.max_history``)
        interactions strictly before each target."""
        n = max_len or self.config.max_history
        end = self.offsets[targets.user] + targets.pos
        return self._window(targets.user, end, np.minimum(targets.pos, n), n)

    def train_sequences(self) -> tuple[np.ndarray, np.ndarray]:
        """(users with training events, their training lengths): user ``u``'s training events are
        ``items[offsets[u] : offsets[u] + train_end[u]]``."""
        users = np.flatnonzero(self.train_end > 0)
        return users, self.train_end[users]

    def in_training(self, targets: Targets) -> np.ndarray:
        """(T,) bool: the target's item is among its own user's training events.

        Every repeat validation target is (its whole history is training data). A repeat test target may
        instead repeat only what came after the training part — the validation target and the events after
        it, which no model was trained on — so a model that learned which items go with which user, rather
        than to read its input, finds it on validation and misses it on the test."""
        mask = self.train_mask()
        owner = np.repeat(np.arange(self.n_users, dtype=np.int64), np.diff(self.offsets))[mask]
        seen = owner * self.n_items + self.items[mask]
        return np.isin(targets.user.astype(np.int64) * self.n_items + targets.item, seen)

    def train_mask(self) -> np.ndarray:
        """(E,) bool, True on events of the training part."""
        lengths = np.diff(self.offsets)
        position = np.arange(len(self.items)) - np.repeat(self.offsets[:-1], lengths)
        return position < np.repeat(self.train_end, lengths)

    def next_item_samples(self, behavior: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(user, position) of every training interaction after a user's first one: the next-item targets
        of generative training; with ``behavior``, only interactions of that behavior (e.g. conversions)."""
        users, lengths = self.train_sequences()
        user = np.repeat(users, np.maximum(lengths - 1, 0))
        first = np.repeat(np.cumsum(np.maximum(lengths - 1, 0)) - np.maximum(lengths - 1, 0), np.maximum(lengths - 1, 0))
        end = np.arange(len(user)) - first + 1
        if behavior is not None:
            keep = self.behaviors[self.offsets[user] + end] == behavior
            user, end = user[keep], end[keep]
        return user.astype(np.int64), end.astype(np.int64)

    def train_windows(self, users: np.ndarray, ends: np.ndarray, max_len: int) -> Histories:
        """Right-aligned windows of training events ending (exclusive) at position ``ends`` of each user."""
        ends = np.asarray(ends, dtype=np.int64)
        if np.any(ends > self.train_end[users]):
            raise ValueError("a training window reaches past the training part")  # leakage guard
        return self._window(users, self.offsets[users] + ends, np.minimum(ends, max_len), max_len)

    def _window(self, users: np.ndarray, end: np.ndarray, length: np.ndarray, n: int) -> Histories:
        cols = np.arange(n)[None, :] - n  # -n .. -1
        idx = end[:, None] + cols
        valid = cols >= -length[:, None]
        safe = np.where(valid, idx, 0)
        return Histories(
            users=np.asarray(users, dtype=np.int64),
            items=np.where(valid, self.items[safe], -1),
            behaviors=np.where(valid, self.behaviors[safe].astype(np.int64), -1),
            timestamps=np.where(valid, self.timestamps[safe], 0),
            lengths=length.astype(np.int64),
        )

    def stats(self) -> dict[str, object]:
        """The numbers ``bench data stats`` prints."""
        counts = np.bincount(self.behaviors, minlength=len(BEHAVIORS))
        return {
            "users": self.n_users,
            "items": self.n_items,
            "rows": len(self.items),
            **{f"rows_{b}": int(c) for b, c in zip(BEHAVIORS, counts)},
            "conversion_share": float(counts[BUY] / max(1, len(self.items))),
            "train_rows": int(self.train_end.sum()),
            "valid_targets": len(self.valid),
            "test_targets": len(self.test),
            "test_repeat_share": float(self.test.is_repeat.mean()) if len(self.test) else 0.0,
            "valid_repeat_share": float(self.valid.is_repeat.mean()) if len(self.valid) else 0.0,
            "min_history": self.config.min_history,
            "max_history": self.config.max_history,
            "item_features": sorted(self.item_features),
            "user_features": sorted(self.user_features),
            **{f"dropped_{k}": v for k, v in self.preparation.get("dropped", {}).items()},
            **{f"coverage_{k}": v for k, v in self.preparation.get("coverage", {}).items()},
            "warnings": list(self.preparation.get("warnings", [])),
            "fingerprint": self.fingerprint,
        }


def window_ends(lengths: np.ndarray, window: int, random_prob: float, rng: np.random.Generator) -> np.ndarray:
    """Where each user's training window ends (exclusive), as the window-per-user models (PBAT, GEAR)
    sample it: the most recent ``window`` events, or with probability ``random_prob``, for a user with
    more than ``window`` training events, a uniformly drawn contiguous window of that length.

    Args:
        lengths: (B,) int64 training events per user.

    Returns:
        (B,) int64 ends in ``[min(window, length), length]``.
    """
    random = (rng.random(len(lengths)) < random_prob) & (lengths > window)
    random_end = window + np.floor(rng.random(len(lengths)) * (lengths - window + 1)).astype(np.int64)
    return np.where(random, np.minimum(random_end, lengths), lengths)


def build_split(log: Log, cfg: SplitConfig) -> Split:
    """Split a (preprocessed) log. Raises :class:`BenchError` when no conversion target survives."""
    if cfg.min_history < 1 or cfg.max_history < 1:
        raise BenchError("split: min_history and max_history must be at least 1")
    df = log.sorted()
    df["pos"] = df.groupby("user", sort=False).cumcount().to_numpy(dtype=np.int64)
    candidate = (df["behavior"].to_numpy() == BUY) & (df["pos"].to_numpy() >= cfg.min_history)
    cands = df.loc[candidate, ["user", "pos"]]
    test_pos = cands.groupby("user", sort=False)["pos"].max()
    if test_pos.empty:
        n_buys = int((df["behavior"] == BUY).sum())
        raise BenchError(
            f"{log.source}: no conversion targets after filtering ({df['user'].nunique()} users, {n_buys} "
            f"purchases, none with at least {cfg.min_history} earlier interactions); lower min_history"
        )
    rest = cands[cands["pos"] < cands["user"].map(test_pos).to_numpy()]
    valid_pos = rest.groupby("user", sort=False)["pos"].max()

    # Drop everything after the test target.
    cut = df["user"].map(test_pos).fillna(np.iinfo(np.int64).max).to_numpy()
    before = len(df)
    df = df[df["pos"].to_numpy() <= cut].reset_index(drop=True)
    preparation = dict(log.preparation)
    preparation["dropped"] = {**preparation.get("dropped", {}), "after_test_target": before - len(df)}

    item_codes, item_ids = pd.factorize(df["item"], sort=True)
    user_codes, user_ids = pd.factorize(df["user"], sort=True)
    df["i"], df["u"] = item_codes.astype(np.int64), user_codes.astype(np.int64)
    n_users = len(user_ids)
    lengths = np.bincount(df["u"].to_numpy(), minlength=n_users)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)

    first_seen = df.groupby(["u", "i"], sort=False)["pos"].transform("min").to_numpy()

    def targets(positions: pd.Series) -> Targets:
        users = pd.Index(user_ids).get_indexer(positions.index)
        order = np.argsort(users, kind="stable")
        users, pos = users[order].astype(np.int64), positions.to_numpy(dtype=np.int64)[order]
        rows = offsets[users] + pos
        return Targets(users, pos, df["i"].to_numpy()[rows], first_seen[rows] < pos)

    test, valid = targets(test_pos), targets(valid_pos)
    if len(valid) == 0:
        raise BenchError(
            f"{log.source}: no validation targets (no user has two conversions with at least "
            f"{cfg.min_history} earlier interactions); lower min_history"
        )
    train_end = lengths.copy()
    train_end[test.user] = test.pos
    train_end[valid.user] = valid.pos

    split = Split(
        items=df["i"].to_numpy(),
        behaviors=df["behavior"].to_numpy(dtype=np.int8),
        timestamps=df["timestamp"].to_numpy(dtype=np.int64),
        offsets=offsets,
        train_end=train_end.astype(np.int64),
        valid=valid,
        test=test,
        item_ids=np.asarray(item_ids.astype(str), dtype=np.str_),
        user_ids=np.asarray(user_ids.astype(str), dtype=np.str_),
        item_features=_align(log.items, item_ids),
        user_features=_align(log.users, user_ids),
        config=cfg,
        preparation=preparation,
    )
    return _with_fingerprint(split)


def _align(table: pd.DataFrame, ids: pd.Index) -> dict[str, np.ndarray]:
    """Feature columns reindexed to the split's ids; ids without a row get -1."""
    if table.empty or len(table.columns) == 0:
        return {}
    index = table.index.astype(str)
    at = pd.Index(index).get_indexer(ids.astype(str))
    return {c: np.where(at >= 0, table[c].to_numpy(dtype=np.int64)[at], -1) for c in table.columns}


# ------------------------------------------------------------------------- fingerprint and storage

_ARRAYS = ("items", "behaviors", "timestamps", "offsets", "train_end", "item_ids", "user_ids")


def _payload(split: Split) -> dict[str, np.ndarray]:
    arrays = {name: getattr(split, name) for name in _ARRAYS}
    for part in ("valid", "test"):
        targets = getattr(split, part)
        for name in ("user", "pos", "item", "is_repeat"):
            arrays[f"{part}_{name}"] = getattr(targets, name)
    arrays |= {f"itemfeat_{k}": v for k, v in split.item_features.items()}
    arrays |= {f"userfeat_{k}": v for k, v in split.user_features.items()}
    arrays["config"] = np.array([split.config.min_history, split.config.max_history], dtype=np.int64)
    return arrays


def _with_fingerprint(split: Split) -> Split:
    digest = hashlib.sha256()
    for name, array in sorted(_payload(split).items()):
        digest.update(name.encode())
        digest.update(str(array.dtype).encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return Split(**{**split.__dict__, "fingerprint": digest.hexdigest()[:16]})


def save_split(split: Split, path: Path) -> None:
    preparation = np.array(json.dumps(split.preparation, sort_keys=True))
    write_npz(path, fingerprint=np.array(split.fingerprint), preparation=preparation, **_payload(split))


def load_split(path: Path) -> Split:
    try:
        with np.load(path, allow_pickle=False) as z:
            a = {k: z[k] for k in z.files}
    except PermissionError:
        raise  # the environment: the CLI says so in one line
    except Exception as err:  # noqa: BLE001 - a truncated or foreign file, whatever numpy makes of it
        raise BenchError(f"{path}: cached split is unreadable ({type(err).__name__}); delete the file") from None
    def targets(part: str) -> Targets:
        return Targets(*(a[f"{part}_{n}"] for n in ("user", "pos", "item", "is_repeat")))
    min_history, max_history = (int(x) for x in a["config"])
    split = Split(
        **{name: a[name] for name in _ARRAYS},
        valid=targets("valid"),
        test=targets("test"),
        item_features={k.removeprefix("itemfeat_"): v for k, v in a.items() if k.startswith("itemfeat_")},
        user_features={k.removeprefix("userfeat_"): v for k, v in a.items() if k.startswith("userfeat_")},
        config=SplitConfig(min_history, max_history),
        preparation=json.loads(str(a["preparation"])) if "preparation" in a else {},
    )
    split = _with_fingerprint(split)
    if split.fingerprint != str(a["fingerprint"]):
        raise BenchError(f"{path}: cached split is corrupt (fingerprint mismatch); delete the file")
    return split
