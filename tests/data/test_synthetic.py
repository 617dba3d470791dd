from __future__ import annotations

import pandas as pd

from bench.data.log import BUY
from bench.data.preprocess import PreprocessConfig, preprocess
from bench.data.split import SplitConfig, build_split
from bench.data.synthetic import SyntheticConfig, generate


def test_same_seed_same_log_other_seed_other_log() -> None:
    cfg = SyntheticConfig(n_users=100, n_items=200)
    a, b = generate(cfg), generate(cfg)
    pd.testing.assert_frame_equal(a.interactions, b.interactions)
    c = generate(SyntheticConfig(n_users=100, n_items=200, seed=1))
    assert not a.interactions.equals(c.interactions)


def test_tmall_like_statistics() -> None:
    log = generate(SyntheticConfig())
    share = (log.interactions["behavior"] == BUY).mean()
    assert 0.006 < share < 0.015  # ~1% conversions, as in the paper's Tmall (0.95%)
    assert {"category", "brand", "seller"} <= set(log.items.columns)
    assert {"gender", "age"} <= set(log.users.columns)
    split = build_split(preprocess(log, PreprocessConfig()), SplitConfig())
    assert 0.7 < split.test.is_repeat.mean() < 0.9  # most purchased items were interacted with before


def test_purchases_follow_a_cluster_of_the_same_category() -> None:
    """Figure 1(c): the interactions before a conversion share its category far more often than chance."""
    log = generate(SyntheticConfig(n_users=300, n_items=500))
    df = log.interactions.sort_values(["user", "timestamp", "order"])
    category = log.items["category"]
    same, total = 0, 0
    for _, g in df.groupby("user"):
        items, behaviors = g["item"].to_numpy(), g["behavior"].to_numpy()
        for t in (i for i in range(len(g)) if behaviors[i] == BUY and i >= 5):
            window = category.loc[items[t - 5 : t]].to_numpy()
            same += int((window == category.loc[items[t]]).sum())
            total += 5
    base = (category.value_counts(normalize=True) ** 2).sum()  # chance that two random items share a category
    assert same / total > 2 * base
