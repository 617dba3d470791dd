from __future__ import annotations

import numpy as np
import torch

from baselines.pop import Pop, PopConfig
from baselines.recent import Recent, RecentConfig
from bench.data.split import SplitConfig, build_split
from bench.recommender import Context
from tests.conftest import make_log

# Training parts: u1 buys b; u2 buys b and c (c also clicked a lot). a is clicked often but never bought.
ROWS = [
    ("u1", "a", "click", 1), ("u1", "a", "click", 2), ("u1", "b", "buy", 3), ("u1", "a", "click", 4),
    ("u1", "c", "buy", 5), ("u1", "b", "click", 6), ("u1", "d", "buy", 7),
    ("u2", "b", "buy", 1), ("u2", "c", "click", 2), ("u2", "c", "click", 3), ("u2", "c", "buy", 4),
    ("u2", "a", "cart", 5), ("u2", "a", "buy", 6),
]  # fmt: skip


def _setup(model_cls, config):
    split = build_split(make_log(ROWS), SplitConfig(min_history=1, max_history=10))
    model = model_cls(config, Context(split=split, device=torch.device("cpu"), seed=0))
    model.fit(split)
    return split, model


def test_pop_ranks_by_conversions_then_interactions() -> None:
    split, model = _setup(Pop, PopConfig())
    # u1 valid = c@4 → training = a,a,b,a ; u2 valid = c@3 → training = b,c,c. Buys in training: b twice.
    order = torch.argsort(model.popularity, descending=True)
    names = list(split.item_ids[order.numpy()])
    assert names[0] == "b"  # 2 buys
    assert names[1] == "a"  # 0 buys, 3 interactions (c: 2)
    scores = model.score(split.histories(split.test))
    assert torch.equal(scores[0], scores[1])  # the same list for everyone


def test_recent_prefers_recent_and_strong_behaviors() -> None:
    split, model = _setup(Recent, RecentConfig(behavior_weights=(1.0, 2.0, 3.0, 2.0), decay=0.5))
    h = split.histories(split.test)
    scores = model.score(h)
    idx = {name: i for i, name in enumerate(split.item_ids)}
    # u2's test history (newest last): b(buy) c(click) c(click) c(buy) a(cart)
    # a: 3·1 = 3 ; c: 2·0.5 + 1·0.25 + 1·0.125 = 1.375 ; b: 2·0.0625 = 0.125 ; d: untouched
    row = scores[1]
    floor = 1.0 * 0.5 ** (h.items.shape[1] - 1)
    assert row[idx["a"]] - floor * model.fallback[idx["a"]] == 3.0
    assert row[idx["c"]] - floor * model.fallback[idx["c"]] == 1.375
    assert row[idx["a"]] > row[idx["c"]] > row[idx["b"]] > row[idx["d"]]


def test_recent_untouched_items_follow_popularity() -> None:
    split, model = _setup(Recent, RecentConfig())
    empty = split.histories(split.test)
    scores = model.score(empty).numpy()
    touched = set(empty.items[0][empty.items[0] >= 0])
    rest = [i for i in range(split.n_items) if i not in touched]
    pop = model.pop.popularity.numpy()
    assert np.array_equal(np.argsort(-scores[0][rest], kind="stable"), np.argsort(-pop[rest], kind="stable"))
