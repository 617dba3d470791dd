from __future__ import annotations

import numpy as np
import torch

from baselines.mbgen import MBGen, MBGenConfig, MBGenNet
from bench.data.log import BUY
from bench.metrics import summarize
from bench.recommender import Context, rank_targets
from bench.semantic_ids import SemanticIdConfig
from tests.conftest import cycle_split

TINY = dict(d_model=32, n_heads=2, encoder_layers=2, decoder_layers=2, d_ff=64, dropout=0.0, behavior_dim=8)


def _inputs() -> tuple[torch.Tensor, ...]:
    behaviors = torch.tensor([[-1, -1, 0, 2, 3], [0, 1, 0, 3, 0]])
    codes = torch.randint(0, 3, (2, 5, 4))
    return behaviors, codes, behaviors >= 0, torch.tensor([3, 11])


def test_shapes_and_token_layout() -> None:
    torch.manual_seed(0)
    net = MBGenNet(MBGenConfig(**TINY, max_items=5, user_buckets=7), (8, 8, 8, 3))
    memory, pad = net.encode(*_inputs())
    assert memory.shape == (2, 1 + 5 * 5 + 1, 32) and pad.shape == (2, 27)  # [user, 5 × (b, c1..c4), EOS]
    assert pad[0].sum() == 2 * 5 and not pad[:, 0].any() and not pad[:, -1].any()
    target = torch.tensor([[BUY, 1, 2, 3, 0], [0, 7, 7, 7, 2]])
    routing = net.decoder_routing(torch.arange(5), target[:, 0])
    assert routing.expert.tolist() == [[0, 1, 2, 3, 4]] * 2
    assert routing.behavior.tolist() == [[0] + [BUY + 1] * 4, [0, 1, 1, 1, 1]]
    nll = net.codes.nll(memory, pad, net.bos.expand(2, -1, -1), target, routing)
    assert nll.shape == (2, 5) and torch.all(nll > 0)


def test_experts_are_keyed_by_the_predicted_token() -> None:
    """Perturbing the expert of slot 3 (which predicts c_3) changes slot 3 and later, never earlier slots."""
    torch.manual_seed(0)
    net = MBGenNet(MBGenConfig(**TINY, max_items=5, user_buckets=0), (8, 8, 8, 3)).eval()
    memory, pad = net.encode(*_inputs())
    y = torch.randn(2, 5, 32)
    routing = net.decoder_routing(torch.arange(5), torch.tensor([BUY, 0]))
    before = net.codes.backbone.decode(y, memory, pad, routing=routing)
    with torch.no_grad():
        for layer in net.codes.backbone.decoder:
            layer.ff.experts[3][0].weight.add_(1.0)
    after = net.codes.backbone.decode(y, memory, pad, routing=routing)
    assert torch.allclose(before[:, :3], after[:, :3], atol=1e-6)
    assert not torch.allclose(before[:, 3], after[:, 3])


def test_the_encoder_injects_the_behavior_of_each_event() -> None:
    """Editing buy's injected embedding changes the memory of a history with a buy, not of one without."""
    torch.manual_seed(0)
    net = MBGenNet(MBGenConfig(**TINY, max_items=5, user_buckets=0), (8, 8, 8, 3)).eval()
    behaviors, codes, mask, users = _inputs()
    no_buy = behaviors.clamp(max=BUY - 1)
    before = [net.encode(b, codes, mask, users)[0] for b in (behaviors, no_buy)]
    with torch.no_grad():
        net.codes.backbone.encoder[0].ff.behavior.weight[BUY + 1].add_(1.0)
    after = [net.encode(b, codes, mask, users)[0] for b in (behaviors, no_buy)]
    assert not torch.allclose(before[0], after[0])
    assert torch.allclose(before[1], after[1], atol=1e-6)


def _pattern_split():
    return cycle_split()


def test_learns_a_deterministic_sequence_pattern_and_decodes_with_or_without_the_cache() -> None:
    """Next item = last item + 1 (mod 30): learned to Recall@10 ≈ 1 in seconds on CPU."""
    split = _pattern_split()
    torch.manual_seed(0)
    ctx = Context(split=split, device=torch.device("cpu"), seed=0, progress=False,
                  semantic_id_config=SemanticIdConfig(codebook_size=4, svd_dim=8))  # fmt: skip
    model = MBGen(MBGenConfig(**TINY, max_items=5, user_buckets=0, epochs=10, patience=10, learning_rate=3e-3), ctx)
    model.fit(split)
    ranks = rank_targets(model, split, split.test, 256, progress=False)
    assert summarize(ranks)["recall@10"] > 0.9
    h = split.histories(split.test)
    lists = model.recommend(h, 10)
    assert all(len(set(row)) == 10 for row in lists.tolist())  # unique, real items
    assert np.array_equal(lists, model.recommend(h, 10, use_cache=False))
