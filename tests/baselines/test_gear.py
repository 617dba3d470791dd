from __future__ import annotations

import math

import torch

from baselines.gear import GEAR, GEARConfig, GEARNet, time_bias
from bench.data.split import SplitConfig, build_split
from bench.metrics import summarize
from bench.recommender import Context, rank_targets
from tests.conftest import cycle_split, make_log

TINY = dict(d_model=16, heads=2, upper_layers=1, dropout=0.0, max_len=6)


def test_time_bias_by_hand() -> None:
    times = torch.tensor([[0, 86_400, 3 * 86_400]])
    bias = time_bias(times, heads=2, unit=86_400.0)  # slopes 1 and 2^-4
    assert bias.shape == (2, 3, 3)
    assert torch.allclose(bias[0, 2, 0], -torch.log1p(torch.tensor(3.0)))
    assert torch.allclose(bias[1, 1, 0], -torch.log1p(torch.tensor(1.0)) / 16)
    assert torch.all(bias[:, 0] == 0) and bias[0, 1, 2] == 0  # diagonal and future: no bias


def test_interleaving_and_no_leak_of_the_target() -> None:
    torch.manual_seed(0)
    net = GEARNet(GEARConfig(**TINY), n_items=20).eval()
    items = torch.tensor([[0, 3, 4, 5, 6], [1, 2, 3, 4, 5]])  # T − 1 = 5 items
    behaviors = torch.tensor([[0, 1, 1, 3, 1, 4], [1, 1, 2, 1, 3, 4]])  # T = 6 behaviors
    times = torch.arange(6).repeat(2, 1) * 3600
    z = net(items, behaviors, times)
    assert z.shape == (2, 11, 16)
    # y_t (even slots) must not see i_t: changing the last item changes nothing up to y_5.
    changed = items.clone()
    changed[:, -1] = 9
    assert torch.allclose(net(changed, behaviors, times)[:, :9], z[:, :9], atol=1e-6)
    assert not torch.allclose(net(changed, behaviors, times)[:, 9:], z[:, 9:])
    assert net.items.weight[0].abs().sum() > 0  # the padding row is random (Xavier over every row), as upstream


def test_evaluation_computes_what_training_computes() -> None:
    """With dropout 0, eval mode under no_grad (PyTorch's inference fast path territory) must give the
    training-mode output: the per-sample, per-head time-bias mask must mean the same in both."""
    torch.manual_seed(0)
    net = GEARNet(GEARConfig(**{**TINY, "max_len": 8}), n_items=50)
    items = torch.randint(1, 50, (3, 7))
    items[0, :3] = 0
    behaviors = torch.randint(1, 5, (3, 8))
    behaviors[0, :3] = 0
    times = torch.arange(8).repeat(3, 1) * 86_400 * torch.tensor([[1], [2], [3]])
    trained = net.train()(items, behaviors, times)
    with torch.no_grad():
        evaluated = net.eval()(items, behaviors, times)
    assert torch.allclose(trained, evaluated, atol=1e-5)
    assert torch.backends.mha.get_fastpath_enabled()  # switched off only inside GEAR's forward


def test_learns_a_deterministic_sequence_pattern() -> None:
    """Each user cycles through one of six groups of five items. (GEAR has no positional embeddings, as
    published, so a strict "next = last + 1" pattern plateaus near Recall@10 0.6; the group pattern does
    not hinge on exact order.) Chance Recall@10 is 1/3."""
    split = cycle_split("group", seconds_per_step=3600)
    torch.manual_seed(0)
    model = GEAR(GEARConfig(**TINY, epochs=40, patience=40, learning_rate=1e-2, batch_size=32),
                 Context(split=split, device=torch.device("cpu"), seed=0, progress=False))  # fmt: skip
    model.fit(split)
    assert summarize(rank_targets(model, split, split.test, 256, progress=False))["recall@10"] > 0.9


def test_trains_on_histories_shorter_and_longer_than_the_window() -> None:
    rows = [(f"u{u}", f"i{(u + t) % 9}", "buy" if t >= n - 2 else "click", t) for u, n in enumerate([4, 5, 9, 14, 20]) for t in range(n)]
    split = build_split(make_log(rows), SplitConfig(min_history=2, max_history=10))
    model = GEAR(GEARConfig(**TINY, epochs=2, patience=2, random_window_prob=1.0),
                 Context(split=split, device=torch.device("cpu"), seed=0, progress=False))  # fmt: skip
    report = model.fit(split)
    assert len(report.valid_curve) == 2 and all(0.0 <= v <= 1.0 for v in report.valid_curve)
    assert all(math.isfinite(loss) and loss > 0 for loss in report.extra["train_loss"])
    ranks = rank_targets(model, split, split.test, 256, progress=False)
    assert len(ranks) == 5 and ranks.min() >= 1 and ranks.max() <= split.n_items  # every history length ranked


def test_item_loss_is_the_full_window_cross_entropy_ignoring_padding() -> None:
    """The loss computes logits only at slots with a real target; it must equal the cross-entropy over
    every slot of the window with padded targets ignored (the public code's form)."""
    rows = [(f"u{u}", f"i{(u + t) % 9}", "buy" if t >= n - 2 else "click", t) for u, n in enumerate([4, 5, 9, 14]) for t in range(n)]
    split = build_split(make_log(rows), SplitConfig(min_history=2, max_history=10))
    torch.manual_seed(0)
    model = GEAR(GEARConfig(**TINY, alpha=0.0), Context(split=split, device=torch.device("cpu"), seed=0, progress=False))
    model.net.eval()
    users, lengths = split.train_sequences()
    w = split.train_windows(users, lengths, TINY["max_len"])
    items, behaviors, times = model._window_tensors(w)
    assert (items == 0).any() and (items > 0).any()  # short histories: the window is part padding
    z = model.net(items[:, :-1], behaviors, times)
    reference = torch.nn.functional.cross_entropy((z[:, 0::2] @ model.net.items.weight.T).flatten(0, 1), items.flatten(), ignore_index=0)
    assert torch.allclose(model.loss(w), reference, atol=1e-6)
