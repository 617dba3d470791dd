from __future__ import annotations

from bench.data.preprocess import PreprocessConfig, buy_share, dedup, item_kcore, preprocess, sample_users
from tests.conftest import make_log


def test_dedup_keeps_first_of_exact_repeats() -> None:
    log = make_log([("u", "a", "fav", 1), ("u", "a", "fav", 1), ("u", "a", "fav", 2), ("u", "a", "click", 1)])
    assert list(dedup(log).interactions["order"]) == [0, 2, 3]


def test_item_kcore() -> None:
    log = make_log([("u", "a", "click", 1), ("v", "a", "click", 1), ("u", "b", "click", 2)])
    assert set(item_kcore(log, 2).interactions["item"]) == {"a"}
    assert len(item_kcore(log, 1).interactions) == 3


def test_user_sampling_reaches_target_buy_share() -> None:
    rows = [("b1", "x", "click", 1), ("b1", "x", "buy", 2)]  # 50% buys
    rows += [(f"n{k}", "y", "click", t) for k in range(20) for t in range(5)]  # 100 non-buying rows
    log = make_log(rows)
    sampled = sample_users(log, None, 0.1, seed=0)
    users = set(sampled.interactions["user"])
    assert "b1" in users
    assert buy_share(sampled.interactions) <= 0.1
    # the smallest number of non-buyers that does it: 1 buy / (2 + 5k) <= 0.1 → k = 2
    assert len(users) == 3


def test_max_users_prefers_converting_users() -> None:
    rows = [("b1", "x", "buy", 1), ("b2", "x", "buy", 1)] + [(f"n{k}", "y", "click", 1) for k in range(5)]
    sampled = sample_users(make_log(rows), 2, None, seed=3)
    assert set(sampled.interactions["user"]) == {"b1", "b2"}


def test_preprocess_default_only_dedups() -> None:
    log = make_log([("u", "a", "click", 1), ("u", "a", "click", 1)])
    assert len(preprocess(log, PreprocessConfig()).interactions) == 1


def test_user_sampling_matches_the_per_user_groupby_it_replaced() -> None:
    """The vectorised counts choose exactly the users the earlier groupby + lambda chose."""
    import numpy as np
    import pandas as pd

    from bench.data.log import BUY
    from bench.data.preprocess import sample_users
    from tests.conftest import make_log

    rng = np.random.default_rng(3)
    rows = [(f"u{rng.integers(0, 300)}", f"i{rng.integers(0, 50)}", "buy" if rng.random() < 0.05 else "click", t) for t in range(5000)]
    log = make_log(rows)
    for max_users, share in ((None, 0.02), (40, None), (40, 0.02), (1000, 0.001)):
        got = set(sample_users(log, max_users, share, 7).interactions["user"])
        # the reference: the earlier implementation's per-user table, then the same selection rule
        frame = log.interactions
        per_user = frame.groupby("user", sort=True)["behavior"].agg(rows="size", buys=lambda b: int((b == BUY).sum()))
        r = np.random.default_rng(7)
        buyers = per_user.index[per_user["buys"] > 0].to_numpy()
        others = per_user.index[per_user["buys"] == 0].to_numpy()
        buyers, others = buyers[r.permutation(len(buyers))], others[r.permutation(len(others))]
        if share is None:
            chosen = np.concatenate([buyers, others])
        else:
            extra = np.cumsum(per_user.loc[others, "rows"].to_numpy())
            needed = int(np.searchsorted(-(per_user.loc[buyers, "buys"].sum() / (per_user.loc[buyers, "rows"].sum() + extra)), -share)) + 1
            chosen = np.concatenate([buyers, others[: min(needed, len(others))]])
        if max_users is not None:
            chosen = chosen[:max_users]
        assert got == set(pd.Index(chosen)), (max_users, share)


def test_duplicated_packed_and_sorted_agree_with_pandas(monkeypatch) -> None:
    """Both lean paths (one packed int64 key; a stable sort when the ranges overflow 63 bits) flag exactly
    the rows ``DataFrame.duplicated`` flags, on narrow and negative columns and a common step."""
    import numpy as np
    import pandas as pd

    from bench.data import preprocess as pre

    rng = np.random.default_rng(0)
    n = 20_000
    frame = pd.DataFrame({
        "user": rng.integers(-50, 50, n).astype(np.int32),
        "item": rng.integers(0, 30, n).astype(np.int32),
        "behavior": rng.integers(0, 4, n).astype(np.int8),
        "timestamp": (1_431_302_400 + 86_400 * rng.integers(0, 5, n)).astype(np.int32),
    })  # fmt: skip
    expected = frame.duplicated(list(pre.DEDUP_KEY), keep="first").to_numpy()
    assert 0 < expected.sum() < n
    assert np.array_equal(pre.duplicated(frame, pre.DEDUP_KEY), expected)
    assert np.array_equal(pre._duplicated_by_sort(frame, pre.DEDUP_KEY), expected)
    monkeypatch.setattr(pre, "DEDUP_CHUNK_ROWS", 1_000)  # 20 key ranges, each with its own hash table
    assert np.array_equal(pre.duplicated(frame, pre.DEDUP_KEY), expected)
    wide = frame.assign(user=frame["user"].astype(np.int64) * 2**40)  # 100 users 2^40 apart, still packable
    assert np.array_equal(pre.duplicated(wide, pre.DEDUP_KEY), expected)
    ids = rng.choice(2**62, 100, replace=False)  # a bijection onto ids with no common step: ~2^62 x 30 x 4 x 5
    huge = frame.assign(user=ids[frame["user"].to_numpy() + 50])
    assert np.array_equal(pre.duplicated(huge, pre.DEDUP_KEY), expected)  # overflows 63 bits: the sort path
