"""Constrained beam search against brute-force scoring of every item, on tiny random models."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.nn.beam import PrefixTrie
from bench.nn.codegen import CodeDecoder
from bench.nn.transformer import BackboneConfig, EncoderDecoder


def _model(vocab: tuple[int, ...], seed: int = 0) -> CodeDecoder:
    torch.manual_seed(seed)
    cfg = BackboneConfig(d_model=16, n_heads=2, encoder_layers=1, decoder_layers=2, d_ff=32, dropout=0.0, )
    return CodeDecoder(EncoderDecoder(cfg), vocab).eval()


def _codes(n: int, vocab: tuple[int, ...], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    space = np.stack(np.meshgrid(*(np.arange(v) for v in vocab), indexing="ij"), -1).reshape(-1, len(vocab))
    return space[rng.choice(len(space), size=n, replace=False)]


def _inputs(model: CodeDecoder, b: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    memory = model.backbone.encode(torch.randn(b, 5, 16), torch.zeros(b, 5, dtype=torch.bool))
    pad = torch.zeros(b, 5, dtype=torch.bool)
    pad[0, :2] = True  # one padded input
    start = torch.randn(b, 2, 16)  # a forced two-token prefix
    return memory, pad, start


def _brute_force(model: CodeDecoder, memory, pad, start, codes: np.ndarray) -> torch.Tensor:
    """(B, I) sequence log-likelihood of every item, by teacher forcing."""
    b, n = memory.shape[0], len(codes)
    rep = lambda t: t.repeat_interleave(n, dim=0)  # noqa: E731
    all_codes = torch.as_tensor(codes).repeat(b, 1)
    with torch.no_grad():
        nll = model.nll(rep(memory), rep(pad), rep(start), all_codes)
    return -nll.sum(1).reshape(b, n)


@pytest.mark.parametrize("use_cache", [True, False])
def test_full_width_beam_equals_brute_force_ranking(use_cache: bool) -> None:
    vocab = (4, 3, 3, 2)
    codes = _codes(40, vocab)
    model = _model(vocab)
    memory, pad, start = _inputs(model, 3)
    trie = PrefixTrie.from_codes(codes, vocab)
    items, scores = model.generate(memory, pad, start, trie, width=len(codes), k=len(codes), use_cache=use_cache)
    exact = _brute_force(model, memory, pad, start, codes)
    expected = torch.argsort(exact, dim=1, descending=True)
    assert torch.equal(items, expected)
    assert torch.allclose(scores, exact.gather(1, expected), atol=1e-5)


def test_cached_and_recomputed_decoding_agree_at_small_width() -> None:
    vocab = (8, 8, 4, 3)
    codes = _codes(200, vocab, seed=1)
    model = _model(vocab, seed=1)
    memory, pad, start = _inputs(model, 4)
    trie = PrefixTrie.from_codes(codes, vocab)
    a = model.generate(memory, pad, start, trie, width=6, k=5, use_cache=True)
    b = model.generate(memory, pad, start, trie, width=6, k=5, use_cache=False)
    assert torch.equal(a[0], b[0]) and torch.allclose(a[1], b[1], atol=1e-5)


def test_never_invalid_or_duplicate_even_with_few_items() -> None:
    vocab = (5, 4, 4, 3)
    for n in (1, 3, 7, 60):
        codes = _codes(n, vocab, seed=n)
        model = _model(vocab, seed=n)
        memory, pad, start = _inputs(model, 3)
        items, scores = model.generate(memory, pad, start, PrefixTrie.from_codes(codes, vocab), width=10, k=10)
        for row, row_scores in zip(items.tolist(), scores.tolist()):
            real = [i for i in row if i >= 0]
            assert len(real) == len(set(real)) == min(n, 10)  # unique, and as many as exist
            assert all(0 <= i < n for i in real)
            assert all(s == -float("inf") for i, s in zip(row, row_scores) if i < 0)
            assert row[: len(real)] == real  # padding only at the end


def test_trie_rejects_colliding_tuples() -> None:
    with pytest.raises(ValueError, match="not unique"):
        PrefixTrie.from_codes(np.array([[0, 1], [0, 1]]), (2, 2))


def test_trie_masks_and_children() -> None:
    codes = np.array([[0, 1, 0], [0, 1, 1], [1, 0, 0], [2, 2, 0]])
    trie = PrefixTrie.from_codes(codes, (3, 3, 2))
    root = torch.zeros(1, dtype=torch.int64)
    assert trie.allowed(0, root).tolist() == [[True, True, True]]
    level1 = trie.step(0, torch.zeros(3, dtype=torch.int64), torch.tensor([0, 1, 2]))
    assert trie.allowed(1, level1).tolist() == [[False, True, False], [True, False, False], [False, False, True]]
    assert trie.allowed(1, torch.tensor([-1])).tolist() == [[False, False, False]]  # a dead beam allows nothing
    assert trie.step(1, level1, torch.tensor([0, 0, 0])).tolist() == [-1, 0 + 1, -1]
    level2 = trie.step(1, level1, torch.tensor([1, 0, 2]))
    assert trie.step(2, level2, torch.tensor([1, 0, 0])).tolist() == [1, 2, 3]  # leaves are items
