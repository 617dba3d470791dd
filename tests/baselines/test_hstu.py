from __future__ import annotations

import torch

from baselines.hstu import HSTU, HSTUConfig, HSTULayer, HSTUNet, time_bucket
from bench.metrics import summarize
from bench.recommender import Context, rank_targets
from tests.conftest import cycle_split

TINY = dict(d_model=16, blocks=2, heads=2, d_head=8, max_len=6, dropout=0.0)


def test_time_buckets_follow_the_official_formula() -> None:
    gaps = torch.tensor([0, 1, 2, 10, 86_400, -86_400, 2**62])
    assert time_bucket(gaps).tolist() == [0, 0, 2, 7, 37, 37, 128]  # floor(ln|d| / 0.301), clipped at 128


def test_shapes_causality_and_padding() -> None:
    torch.manual_seed(0)
    net = HSTUNet(HSTUConfig(**TINY), n_items=20).eval()
    items = torch.tensor([[-1, -1, 3, 4, 5, 6], [1, 2, 3, 4, 5, 6]])
    behaviors = torch.zeros_like(items)
    times = torch.arange(6).repeat(2, 1) * 100
    out = net(items, behaviors, times)
    assert out.shape == (2, 6, 16) and torch.all(out[0, :2] == 0)  # padded slots stay zero
    changed = items.clone()
    changed[:, -1] = 7  # the future must not reach earlier positions
    assert torch.allclose(net(changed, behaviors, times)[:, :-1], out[:, :-1], atol=1e-6)
    layer = HSTULayer(HSTUConfig(**TINY))  # one projection in, one out: no feed-forward block
    assert [name for name, _ in layer.named_children()] == ["uvqk", "out", "drop"]


def test_learns_a_deterministic_sequence_pattern() -> None:
    """Next item = last item + 1 (mod 30): learned to Recall@10 ≈ 1 in seconds on CPU."""
    split = cycle_split(seconds_per_step=1000)
    torch.manual_seed(0)
    model = HSTU(HSTUConfig(**TINY, negatives=16, epochs=15, patience=15, learning_rate=3e-3, batch_size=32),
                 Context(split=split, device=torch.device("cpu"), seed=0, progress=False))  # fmt: skip
    model.fit(split)
    assert summarize(rank_targets(model, split, split.test, 256, progress=False))["recall@10"] > 0.9
