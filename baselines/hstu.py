"""HSTU (Zhai et al., ICML 2024, "Actions Speak Louder than Words"), after meta-recsys/generative-recommenders
(research code; ../shared/notes/baselines/hstu.md).

Layer, exactly as the official code: n = LayerNorm(x) without affine; [U, V, Q, K] = SiLU(n W) (no bias);
A = SiLU(Q Kᵀ + B) / N with a causal mask and N the padded length (no softmax); O = A V;
y = x + W_o Dropout(U ⊙ LayerNorm(O)); no feed-forward block. B = learned relative-position bias plus a
bucketed log time-gap bias, per layer, shared by the heads. Training: next item at every position with a
sampled softmax (uniform negatives, L2-normalised query and item embeddings, cosine / 0.05, accidental
hits masked). Scoring: cosine of the last position's output with every item, no seen-item filter.

Adaptations to this harness (README): a behavior embedding is added to each input (the public code feeds
no actions); the time bias uses t_i − t_j (both known) instead of the next event's time, which at
evaluation would be the target's own timestamp; padded slots are re-zeroed after every layer (the
official code is jagged, so it has no padded slots); early stopping on validation NDCG@10.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.data.log import BEHAVIORS
from bench.data.split import Histories, Split
from bench.recommender import Context, FitReport, ScoringModel
from bench.training import fit_model, minibatch_epoch

TIME_BUCKETS = 128


@dataclass(frozen=True)
class HSTUConfig:
    """Defaults: the official Amazon-Books config (the closest shipped one to a 50-item product history)."""

    d_model: int = 64
    blocks: int = 4
    heads: int = 4
    d_head: int = 16
    """dqk = dv, as in every shipped config."""
    max_len: int = 50
    dropout: float = 0.5
    negatives: int = 512
    temperature: float = 0.05
    learning_rate: float = 1e-3
    batch_size: int = 128
    epochs: int = 100
    patience: int = 5


def time_bucket(gap: torch.Tensor) -> torch.Tensor:
    """floor(ln(max(|Δt|, 1)) / 0.301), clipped to [0, 128]: the official bucketing (natural log over log10 2)."""
    return (torch.log(gap.abs().clamp(min=1).float()) / 0.301).long().clamp(0, TIME_BUCKETS)


class HSTULayer(nn.Module):
    def __init__(self, cfg: HSTUConfig) -> None:
        super().__init__()
        self.cfg = cfg
        h, dh = cfg.heads, cfg.d_head
        self.uvqk = nn.Linear(cfg.d_model, 4 * h * dh, bias=False)
        nn.init.normal_(self.uvqk.weight, std=0.02)
        self.out = nn.Linear(h * dh, cfg.d_model)
        nn.init.xavier_uniform_(self.out.weight)
        self.pos_bias = nn.Parameter(torch.randn(2 * cfg.max_len - 1) * 0.02)
        self.time_bias = nn.Parameter(torch.randn(TIME_BUCKETS + 1) * 0.02)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, times: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x (B, N, D), times (B, N) int64 seconds, mask (B, N) True on real slots → (B, N, D)."""
        b, n, _ = x.shape
        h, dh = self.cfg.heads, self.cfg.d_head
        u, v, q, k = F.silu(self.uvqk(F.layer_norm(x, x.shape[-1:], eps=1e-6))).split(h * dh, dim=-1)
        q, k, v = (t.view(b, n, h, dh).transpose(1, 2) for t in (q, k, v))
        i, j = torch.arange(n, device=x.device)[:, None], torch.arange(n, device=x.device)[None, :]
        bias = self.pos_bias[n - 1 + j - i] + self.time_bias[time_bucket(times[:, :, None] - times[:, None, :])]
        scores = F.silu(q @ k.transpose(-1, -2) + bias[:, None]) / n
        allowed = (j <= i)[None, None] & mask[:, None, None, :]
        o = (scores * allowed).matmul(v).transpose(1, 2).reshape(b, n, h * dh)
        y = x + self.out(self.drop(u * F.layer_norm(o, o.shape[-1:], eps=1e-6)))
        return y * mask[..., None]


class HSTUNet(nn.Module):
    def __init__(self, cfg: HSTUConfig, n_items: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.items = nn.Embedding(n_items + 1, cfg.d_model, padding_idx=0)  # row 0 = padding
        nn.init.trunc_normal_(self.items.weight, std=0.02)
        self.behaviors = nn.Embedding(len(BEHAVIORS), cfg.d_model)
        nn.init.trunc_normal_(self.behaviors.weight, std=0.02)
        self.positions = nn.Embedding(cfg.max_len, cfg.d_model)
        nn.init.trunc_normal_(self.positions.weight, std=cfg.d_model**-0.5)
        self.layers = nn.ModuleList(HSTULayer(cfg) for _ in range(cfg.blocks))
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, items: torch.Tensor, behaviors: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
        """Right-aligned items (B, N) (−1 padding), behaviors, times → (B, N, D) outputs."""
        mask = items >= 0
        n = items.shape[1]
        # Position 0 is the oldest item of the window, as in the official left-aligned layout.
        position = (torch.arange(n, device=items.device)[None, :] - (n - mask.sum(1, keepdim=True))).clamp(min=0)
        x = math.sqrt(self.cfg.d_model) * self.items(items + 1) + self.behaviors(behaviors.clamp(min=0))
        x = self.drop(x + self.positions(position)) * mask[..., None]
        for layer in self.layers:
            x = layer(x, times, mask)
        return x

    def item_table(self) -> torch.Tensor:
        """(I, D) L2-normalised candidate embeddings (padding row dropped)."""
        return F.normalize(self.items.weight[1:], dim=-1, eps=1e-6)


class HSTU(ScoringModel):
    Config = HSTUConfig

    def __init__(self, config: HSTUConfig, ctx: Context) -> None:
        super().__init__(config, ctx)
        self.net = HSTUNet(config, ctx.split.n_items).to(ctx.device)

    def _tensors(self, h: Histories) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        n, dev = self.config.max_len, self.ctx.device
        return tuple(torch.as_tensor(a[:, -n:], device=dev) for a in (h.items, h.behaviors, h.timestamps))  # type: ignore[return-value]

    def sampled_softmax(self, out: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean over valid positions of −log softmax at the positive among R uniform negatives.
        out (B, N, D), targets (B, N) next item (−1 where none)."""
        valid = targets >= 0
        query = F.normalize(out[valid], dim=-1, eps=1e-6)  # (P, D)
        pos = targets[valid]
        neg = torch.randint(0, self.ctx.split.n_items, (len(pos), self.config.negatives), device=out.device)
        table = self.net.item_table()
        logits = torch.cat(
            [(query * table[pos]).sum(-1, keepdim=True), torch.einsum("pd,prd->pr", query, table[neg])], dim=1
        ) / self.config.temperature
        logits[:, 1:] = logits[:, 1:].masked_fill(neg == pos[:, None], -5e4)  # accidental hits
        return F.cross_entropy(logits.float(), torch.zeros(len(pos), dtype=torch.long, device=out.device))

    def fit(self, split: Split) -> FitReport:
        cfg, dev = self.config, self.ctx.device
        users, lengths = split.train_sequences()
        keep = lengths >= 2
        users, lengths = users[keep], lengths[keep]
        # One row per user, as the official code: the most recent max_len + 1 training events; every
        # position predicts the next one.
        optimizer = torch.optim.AdamW(self.net.parameters(), lr=cfg.learning_rate, betas=(0.9, 0.98), weight_decay=0.0)

        def loss_of(idx: np.ndarray) -> torch.Tensor:
            window = split.train_windows(users[idx], lengths[idx], cfg.max_len + 1)
            items, behaviors, times = (torch.as_tensor(a, device=dev) for a in (window.items, window.behaviors, window.timestamps))
            out = self.net(items[:, :-1], behaviors[:, :-1], times[:, :-1])
            targets = torch.where(items[:, :-1] >= 0, items[:, 1:], torch.full_like(items[:, 1:], -1))
            return self.sampled_softmax(out, targets)

        def run_epoch(epoch: int) -> float:
            return minibatch_epoch(len(users), cfg.batch_size, self.ctx.epoch_seed(epoch), 0, optimizer, dev, loss_of)

        return fit_model(self, self.net, optimizer, run_epoch, split, "HSTU")

    @torch.no_grad()
    def score(self, histories: Histories) -> torch.Tensor:
        self.net.eval()
        out = self.net(*self._tensors(histories))[:, -1]  # right-aligned: the last column is the latest event
        return F.normalize(out.float(), dim=-1, eps=1e-6) @ self.net.item_table().float().T
