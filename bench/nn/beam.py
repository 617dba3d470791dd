"""Constrained beam search over semantic-ID tuples: only tokens that continue a real item are allowed.

The trie is stored per level in CSR form (node → sorted allowed tokens → child node), so it takes memory
proportional to the number of items, not nodes × vocabulary, and its masks and child lookups are batched
tensor operations on any device.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class PrefixTrie:
    """Level l maps a node (a distinct length-l prefix) to its allowed tokens and their child nodes.

    Attributes:
        ptr: per level, (n_nodes_l + 1,) int64 CSR offsets.
        token: per level, (n_edges_l,) int64 allowed tokens, sorted within a node.
        key: per level, (n_edges_l,) int64 node · V_l + token, sorted (for child lookup).
        child: per level, (n_edges_l,) int64 child node at level l + 1 (at the last level: the item).
        vocab_sizes: tokens per level.
    """

    ptr: tuple[torch.Tensor, ...]
    token: tuple[torch.Tensor, ...]
    key: tuple[torch.Tensor, ...]
    child: tuple[torch.Tensor, ...]
    vocab_sizes: tuple[int, ...]

    @classmethod
    def from_codes(cls, codes: np.ndarray, vocab_sizes: tuple[int, ...]) -> PrefixTrie:
        """codes (I, L) unique token tuples; item i is the leaf of path codes[i]."""
        n, levels = codes.shape
        node = np.zeros(n, dtype=np.int64)  # every item starts at the root
        ptr, token, key, child = [], [], [], []
        for level in range(levels):
            v = vocab_sizes[level]
            edge_key = node * v + codes[:, level]
            keys, first, inverse = np.unique(edge_key, return_index=True, return_inverse=True)
            inverse = inverse.reshape(-1)
            n_nodes = int(node.max()) + 1
            edge_node = keys // v
            ptr.append(np.searchsorted(edge_node, np.arange(n_nodes + 1)))
            token.append(keys % v)
            key.append(keys)
            if level == levels - 1:
                if len(keys) != n:
                    raise ValueError(f"semantic-ID tuples are not unique ({len(keys)} distinct for {n} items)")
                child.append(first)  # the item whose path ends in this edge
            else:
                child.append(np.arange(len(keys)))
            node = inverse  # the child node of each item's path is its edge index
        as_t = lambda arrays: tuple(torch.as_tensor(a, dtype=torch.int64) for a in arrays)  # noqa: E731
        return cls(as_t(ptr), as_t(token), as_t(key), as_t(child), tuple(int(v) for v in vocab_sizes))

    def to(self, device: torch.device) -> PrefixTrie:
        move = lambda ts: tuple(t.to(device) for t in ts)  # noqa: E731
        return PrefixTrie(move(self.ptr), move(self.token), move(self.key), move(self.child), self.vocab_sizes)

    def allowed(self, level: int, nodes: torch.Tensor) -> torch.Tensor:
        """(R,) nodes at ``level`` (-1 = dead beam) → (R, V_level) bool mask of allowed tokens."""
        live = nodes >= 0
        safe = nodes.clamp(min=0)
        start, end = self.ptr[level][safe], self.ptr[level][safe + 1]
        counts = torch.where(live, end - start, torch.zeros_like(start))
        rows = torch.repeat_interleave(torch.arange(len(nodes), device=nodes.device), counts)
        offsets = torch.arange(int(counts.sum()), device=nodes.device) - torch.repeat_interleave(
            torch.cumsum(counts, 0) - counts, counts
        )
        edges = torch.repeat_interleave(start, counts) + offsets
        mask = torch.zeros(len(nodes), self.vocab_sizes[level], dtype=torch.bool, device=nodes.device)
        mask[rows, self.token[level][edges]] = True
        return mask

    def step(self, level: int, nodes: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Child of each (node, token) at ``level`` (an item index at the last level); -1 if absent."""
        keys = self.key[level]
        query = nodes.clamp(min=0) * self.vocab_sizes[level] + tokens
        at = torch.searchsorted(keys, query).clamp(max=len(keys) - 1)
        found = (keys[at] == query) & (nodes >= 0)
        return torch.where(found, self.child[level][at], torch.full_like(query, -1))


StepFn = Callable[[torch.Tensor, int], torch.Tensor]
"""step(tokens (R,) chosen at level l − 1, level l) → (R, V_l) logits for level l."""
SelectFn = Callable[[torch.Tensor, int], None]
"""select(rows (B·W,), W): keep these decoding rows (grouped by input) in the decoder state."""


@torch.no_grad()
def beam_search(
    first_logits: torch.Tensor, step: StepFn, select: SelectFn, trie: PrefixTrie, width: int, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Batched beam search constrained to the trie.

    A sequence's score is the sum over levels of the model's log-softmax (unrenormalised: masking decides
    which continuations survive, not their probabilities), so with ``width`` ≥ the number of items the
    result is the exact ranking of every item by its sequence log-likelihood.

    Args:
        first_logits: (B, V_0) logits of the first token.
        step, select: the model's decoder (see :data:`StepFn`, :data:`SelectFn`).
        width: beams per input; must be ≥ k.

    Returns:
        items (B, k) int64 unique items in descending score, -1 where fewer than k exist; scores (B, k).
    """
    if width < k:
        raise ValueError(f"beam width {width} < list size {k}")
    b = first_logits.shape[0]
    device = first_logits.device
    levels = len(trie.vocab_sizes)
    nodes = torch.zeros(b, dtype=torch.int64, device=device)
    logp = torch.log_softmax(first_logits.float(), dim=-1).masked_fill(~trie.allowed(0, nodes), -float("inf"))
    w = min(width, logp.shape[1])
    scores, tokens = logp.topk(w, dim=1)  # (B, w)
    rows = torch.arange(b, device=device).repeat_interleave(w)
    nodes = trie.step(0, nodes[rows], tokens.reshape(-1))
    nodes = torch.where(scores.reshape(-1) > -float("inf"), nodes, torch.full_like(nodes, -1))
    select(rows, w)
    for level in range(1, levels):
        v = trie.vocab_sizes[level]
        logits = step(tokens.reshape(-1), level)
        logp = torch.log_softmax(logits.float(), dim=-1).masked_fill(~trie.allowed(level, nodes), -float("inf"))
        total = (scores.reshape(-1, 1) + logp).reshape(b, w * v)
        w_next = min(width, w * v)
        scores, flat = total.topk(w_next, dim=1)
        parent, tokens = flat // v, flat % v
        rows = (torch.arange(b, device=device)[:, None] * w + parent).reshape(-1)
        nodes = trie.step(level, nodes[rows], tokens.reshape(-1))
        nodes = torch.where(scores.reshape(-1) > -float("inf"), nodes, torch.full_like(nodes, -1))
        if level < levels - 1:
            select(rows, w_next)
        w = w_next
    items = nodes.reshape(b, w)[:, :k]
    scores = scores[:, :k]
    if items.shape[1] < k:  # fewer beams than k in total
        pad = k - items.shape[1]
        items = torch.cat([items, torch.full((b, pad), -1, device=device, dtype=items.dtype)], dim=1)
        scores = torch.cat([scores, torch.full((b, pad), -float("inf"), device=device)], dim=1)
    return items, scores
