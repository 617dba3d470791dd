from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.data.loaders import load
from bench.data.log import BUY
from bench.data.preprocess import PreprocessConfig, preprocess
from bench.data.split import Split, SplitConfig, build_split, load_split, save_split
from bench.data.synthetic import SyntheticConfig, generate
from bench.errors import BenchError
from tests.conftest import make_log

# user u: 5 events, buy at pos 2 (too early for min_history=3), buy at 3 (valid), 4 clicks, buy at 8 (test),
# then two events after the test target that must vanish.
ROWS = [
    ("u", "a", "click", 1), ("u", "b", "click", 2), ("u", "a", "buy", 3), ("u", "c", "cart", 4),
    ("u", "c", "buy", 5), ("u", "d", "click", 6), ("u", "e", "click", 7), ("u", "f", "fav", 8),
    ("u", "g", "buy", 9), ("u", "h", "click", 10), ("u", "g", "buy", 11),
    # v: one qualifying buy (test only); w: no buy (training-only user)
    ("v", "a", "click", 1), ("v", "b", "click", 2), ("v", "b", "cart", 3), ("v", "b", "buy", 4),
    ("w", "a", "click", 1), ("w", "h", "click", 2),
]  # fmt: skip


def _split(rows=ROWS, **cfg) -> Split:
    return build_split(make_log(rows), SplitConfig(**cfg))


def _item(split: Split, raw: str) -> int:
    return int(np.flatnonzero(split.item_ids == raw)[0])


def test_targets_by_hand() -> None:
    s = _split(min_history=3)
    u, v, w = (int(np.flatnonzero(s.user_ids == x)[0]) for x in "uvw")
    # u's buys at positions 2, 4, 8, 10 → test = 10 (item g, bought at pos 8 before: repeat), valid = 8.
    assert list(s.test.user) == [u, v] and list(s.test.pos) == [10, 3]
    assert list(s.test.item) == [_item(s, "g"), _item(s, "b")]
    assert list(s.test.is_repeat) == [True, True]
    assert list(s.valid.user) == [u] and list(s.valid.pos) == [8]
    assert list(s.valid.is_repeat) == [False]
    assert s.train_end[u] == 8 and s.train_end[v] == 3 and s.train_end[w] == 2


def test_nothing_after_the_test_target_is_kept() -> None:
    # u's last purchase (g at 11) is the test target; a click and a fav follow it and must go.
    s = _split([*ROWS[:11], ("u", "i", "click", 12), ("u", "j", "fav", 13), *ROWS[11:]], min_history=3)
    u = int(np.flatnonzero(s.user_ids == "u")[0])
    sequence = list(s.item_ids[s.items[s.offsets[u] : s.offsets[u + 1]]])
    assert sequence == ["a", "b", "a", "c", "c", "d", "e", "f", "g", "h", "g"]  # positions 0..10, the target last
    assert s.test.pos[list(s.test.user).index(u)] == 10
    assert s.preparation["dropped"]["after_test_target"] == 2


def test_min_history_counts_earlier_interactions() -> None:
    s = _split(min_history=4)  # v's buy has only 3 earlier interactions
    assert len(s.test) == 1 and s.test.pos[0] == 10 and s.valid.pos[0] == 8
    with pytest.raises(BenchError, match="no conversion targets"):
        _split(min_history=11)


def test_no_validation_target_is_an_error() -> None:
    with pytest.raises(BenchError, match="no validation targets"):
        _split(ROWS[11:], min_history=3)


def test_ties_are_broken_by_file_order() -> None:
    rows = [("u", "a", "click", 5), ("u", "b", "click", 5), ("u", "c", "cart", 5), ("u", "c", "buy", 5),
            ("u", "d", "click", 5), ("u", "d", "buy", 5)]  # fmt: skip
    s = _split(rows, min_history=3)
    seq = s.item_ids[s.items]
    assert list(seq) == ["a", "b", "c", "c", "d", "d"]
    assert s.test.pos[0] == 5 and s.valid.pos[0] == 3


def test_in_training_by_hand() -> None:
    # u's test target g (pos 10) repeats only the validation target g (pos 8), past u's training part
    # (positions 0..7); v's test target b repeats b at positions 1 and 2, inside v's training part.
    s = _split(min_history=3)
    assert list(s.in_training(s.test)) == [False, True]
    # u's validation target g is new to u, so not in its training events
    assert list(s.in_training(s.valid)) == [False]
    # h is in w's training events and in u's history only after training (pos 9): it does not count for u
    other = s.test.take(np.array([0]))
    assert not s.in_training(type(other)(other.user, other.pos, np.array([_item(s, "h")]), other.is_repeat))[0]


def test_histories_hold_only_strictly_earlier_events() -> None:
    s = _split(min_history=3, max_history=4)
    h = s.histories(s.test)
    u_row = h.items[0]
    assert list(s.item_ids[u_row]) == ["e", "f", "g", "h"]  # positions 6..9, not the target (10)
    v_row = h.items[1]
    assert list(v_row[:1]) == [-1] and list(s.item_ids[v_row[1:]]) == ["a", "b", "b"]
    assert list(h.lengths) == [4, 3]


def _assert_no_leakage(s: Split) -> None:
    """No target, and nothing at or after it, reaches any model input."""
    first_target = s.train_end.copy()  # train_end is the first held-out position of each user
    for part in (s.valid, s.test):
        h = s.histories(part, max_len=10_000)
        for row, user, pos in zip(range(len(part)), part.user, part.pos):
            n = h.lengths[row]
            expected = s.items[s.offsets[user] : s.offsets[user] + pos]
            assert np.array_equal(h.items[row, -n:], expected)  # exactly the events before the target
            assert n == pos
    users, lengths = s.train_sequences()
    assert np.all(lengths == first_target[users])
    assert s.train_mask().sum() == lengths.sum()
    for part in (s.valid, s.test):  # no target event is a training event
        assert not s.train_mask()[s.offsets[part.user] + part.pos].any()
    for part in (s.valid, s.test):
        assert np.all(s.train_end[part.user] <= part.pos)
    with pytest.raises(ValueError, match="past the training part"):
        u = s.valid.user[0]
        s.train_windows(np.array([u]), np.array([s.train_end[u] + 1]), 5)


def test_no_leakage_on_hand_log() -> None:
    _assert_no_leakage(_split(min_history=3))


def test_no_leakage_on_synthetic() -> None:
    log = preprocess(generate(SyntheticConfig(n_users=200, n_items=300)), PreprocessConfig())
    s = build_split(log, SplitConfig(min_history=3, max_history=20))
    _assert_no_leakage(s)
    # The valid target of a user comes before the test target, and validation is buy-only.
    both = np.intersect1d(s.valid.user, s.test.user)
    vp = dict(zip(s.valid.user, s.valid.pos))
    tp = dict(zip(s.test.user, s.test.pos))
    assert all(vp[u] < tp[u] for u in both)
    assert np.all(s.behaviors[s.offsets[s.test.user] + s.test.pos] == BUY)


def test_fingerprint_is_content_hash(tmp_path: Path) -> None:
    a, b = _split(min_history=3), _split(min_history=3)
    assert a.fingerprint == b.fingerprint and len(a.fingerprint) == 16
    assert _split(min_history=2).fingerprint != a.fingerprint
    changed = list(ROWS)
    changed[5] = ("u", "z", "click", 6)
    assert _split(changed, min_history=3).fingerprint != a.fingerprint
    save_split(a, tmp_path / "s.npz")
    assert load_split(tmp_path / "s.npz").fingerprint == a.fingerprint


def test_item_features_align_with_item_index(write) -> None:
    path = write("d/interactions.csv", "user_id,item_id,behavior,timestamp\n" + "".join(
        f"u,{i},{b},{1_600_000_000 + t}\n" for t, (i, b) in enumerate([("x", "click"), ("y", "click"), ("x", "cart"), ("x", "buy"), ("y", "buy"), ("x", "buy")])
    ))
    write("d/items.csv", "item_id,category\ny,cat-y\nx,cat-x\n")
    s = build_split(load("csv", path.parent), SplitConfig(min_history=3))
    cat = s.item_features["category"]
    assert cat[_item(s, "y")] == 0 and cat[_item(s, "x")] == 1  # codes follow items.csv order


def test_next_item_samples_are_every_training_interaction_after_the_first() -> None:
    s = _split(min_history=3)
    user, end = s.next_item_samples()
    naive = [(u, t) for u in range(s.n_users) for t in range(1, s.train_end[u])]
    assert list(zip(user.tolist(), end.tolist())) == naive
    buy_user, buy_end = s.next_item_samples(behavior=BUY)
    assert all(s.behaviors[s.offsets[u] + t] == BUY for u, t in zip(buy_user, buy_end))
    assert len(buy_user) == sum(s.behaviors[s.offsets[u] + t] == BUY for u, t in naive)


def test_window_ends_recent_or_random() -> None:
    from bench.data.split import window_ends

    lengths = np.array([3, 10, 10, 5])
    rng = np.random.default_rng(0)
    assert window_ends(lengths, 5, 0.0, rng).tolist() == [3, 10, 10, 5]  # always the most recent events
    ends = np.stack([window_ends(lengths, 5, 1.0, rng) for _ in range(200)])
    assert (ends[:, 0] == 3).all() and (ends[:, 3] == 5).all()  # too short for another window
    assert set(ends[:, 1].tolist()) == set(range(5, 11))  # every contiguous 5-window of 10 events
