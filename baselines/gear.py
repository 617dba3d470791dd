"""GEAR (Jiang et al., SIGIR 2025), after the public code kaiwenzhou1/GEAR (../shared/notes/baselines/gear.md).

A window of T events gives items i_1..i_{T-1} and behaviors b_1..b_T (b_T is the behavior to predict for).
Item branch: one causal Transformer layer over the items. Behavior branch: one causal layer over the
behaviors whose attention logits get, per head h, the time bias −m_h · ln(1 + Δt) with m_h = 2^(−8h/H).
Both branch inputs pass one shared LayerNorm after dropout. The outputs are interleaved behavior first,
[y_1, x_1, …, y_{T-1}, x_{T-1}, y_T], and go through causal upper layers. Behavior slots predict the item
(tied item table, full softmax), item slots the next behavior; loss = CE_item + α · CE_behavior, α = 0.1.
Like the public code: post-norm PyTorch encoder layers with ReLU, no positional embeddings (order comes
from the causal masks), no key-padding mask, and an item table Xavier-initialised on every row, padding
row included (frozen).

Adaptations (README): evaluation feeds the target's behavior (buy) but not its timestamp, so the last gap
is 0 instead of the target's real gap; Δt is measured in ``time_unit`` seconds (days by default; the
public code's unit is not known); early stopping on a separate validation target.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.data.log import BEHAVIORS, BUY
from bench.data.split import Histories, Split, window_ends
from bench.recommender import Context, FitReport, ScoringModel
from bench.training import fit_model, minibatch_epoch


@dataclass(frozen=True)
class GEARConfig:
    d_model: int = 32
    heads: int = 2
    upper_layers: int = 4
    dropout: float = 0.2
    max_len: int = 50
    """T: events per window (T − 1 items and T behaviors)."""
    alpha: float = 0.1
    time_unit: float = 86_400.0
    random_window_prob: float = 0.2
    """Probability of training on a random contiguous window instead of the most recent one."""
    learning_rate: float = 1e-3
    weight_decay: float = 1e-6
    batch_size: int = 128
    epochs: int = 200
    patience: int = 30


def encoder_layer(cfg: GEARConfig) -> nn.TransformerEncoderLayer:
    """PyTorch's post-norm layer with ReLU and a 4d feed-forward, as the public code uses."""
    return nn.TransformerEncoderLayer(cfg.d_model, cfg.heads, 4 * cfg.d_model, cfg.dropout, batch_first=True)


def time_bias(times: torch.Tensor, heads: int, unit: float) -> torch.Tensor:
    """(B, T) timestamps → (B·H, T, T) additive logits −m_h · ln(1 + max(t_i − t_j, 0)), batch-major,
    m_h = 2^(−8h/H) (head 0 has slope 1); zero on and above the diagonal (masked anyway)."""
    gap = ((times[:, :, None] - times[:, None, :]).float() / unit).clamp(min=0)
    slopes = 2.0 ** (-8.0 * torch.arange(heads, device=times.device) / heads)
    bias = -slopes[None, :, None, None] * torch.log1p(gap)[:, None]
    return bias.tril(diagonal=-1).flatten(0, 1)


@contextlib.contextmanager
def without_mha_fastpath() -> Iterator[None]:
    """PyTorch's inference fast path of ``nn.TransformerEncoderLayer`` (taken under ``no_grad`` in eval
    mode) applies a per-sample, per-head 3-D float mask differently from the documented (B·H, T, T)
    layout the training path uses: the behavior branch's time bias then changes between training and
    evaluation (outputs differ by ~1 with dropout 0), and GEAR ranked near Pop. The public code uses its
    own layer classes, which have no fast path; this switches it off around GEAR's forward only."""
    enabled = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(enabled)


class GEARNet(nn.Module):
    def __init__(self, cfg: GEARConfig, n_items: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.items = nn.Embedding(n_items + 1, cfg.d_model, padding_idx=0)
        nn.init.xavier_uniform_(self.items.weight)  # every row, padding too: a random, frozen pad vector
        self.behaviors = nn.Embedding(len(BEHAVIORS) + 1, cfg.d_model, padding_idx=0)
        self.norm = nn.LayerNorm(cfg.d_model, eps=1e-6)  # shared by both branches
        self.drop = nn.Dropout(cfg.dropout)
        self.item_layer, self.behavior_layer = encoder_layer(cfg), encoder_layer(cfg)
        self.upper = nn.ModuleList(encoder_layer(cfg) for _ in range(cfg.upper_layers))

    @staticmethod
    def causal(n: int, device: torch.device) -> torch.Tensor:
        return torch.full((n, n), -float("inf"), device=device).triu(diagonal=1)

    def forward(self, items: torch.Tensor, behaviors: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
        """items (B, T − 1) ids (0 pad), behaviors (B, T) ids (0 pad), times (B, T) seconds →
        Z (B, 2T − 1, d), interleaved [y_1, x_1, …, x_{T-1}, y_T]."""
        with without_mha_fastpath():
            return self._forward(items, behaviors, times)

    def _forward(self, items: torch.Tensor, behaviors: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
        b, t = behaviors.shape
        dev = items.device
        x = self.item_layer(self.norm(self.drop(self.items(items))), src_mask=self.causal(t - 1, dev))
        bias = self.causal(t, dev)[None] + time_bias(times, self.cfg.heads, self.cfg.time_unit)
        y = self.behavior_layer(self.norm(self.drop(self.behaviors(behaviors))), src_mask=bias)
        x, y = self.drop(x), self.drop(y)
        z = torch.empty(b, 2 * t - 1, x.shape[-1], device=dev, dtype=x.dtype)
        z[:, 0::2], z[:, 1::2] = y, x
        mask = self.causal(2 * t - 1, dev)
        for layer in self.upper:
            z = layer(z, src_mask=mask)
        return z


class GEAR(ScoringModel):
    Config = GEARConfig

    def __init__(self, config: GEARConfig, ctx: Context) -> None:
        super().__init__(config, ctx)
        self.net = GEARNet(config, ctx.split.n_items).to(ctx.device)

    def _window_tensors(self, w: Histories) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """A right-aligned window of T events → item ids (B, T), behavior ids (B, T), times (B, T)."""
        dev = self.ctx.device
        # Padded slots take the first real event's time (the public code's cumulative gaps are 0 there).
        first = np.take_along_axis(w.timestamps, np.argmax(w.items >= 0, axis=1)[:, None], axis=1)
        times = np.where(w.items >= 0, w.timestamps, first)
        return (torch.as_tensor(w.items + 1, device=dev), torch.as_tensor(w.behaviors + 1, device=dev),
                torch.as_tensor(times, device=dev))  # fmt: skip

    def loss(self, w: Histories) -> torch.Tensor:
        """CE over the items at behavior slots + α · CE over the next behaviors at item slots."""
        items, behaviors, times = self._window_tensors(w)
        z = self.net(items[:, :-1], behaviors, times)
        # y_t predicts i_t. Only slots with a real target get logits: the loss ignores padded ones anyway,
        # and on a real log about half of each window is padding, which made this (R, N + 1) product most
        # of the training time.
        real = items > 0
        item_logits = z[:, 0::2][real] @ self.net.items.weight.T  # (R, N + 1)
        behavior_logits = z[:, 1::2] @ self.net.behaviors.weight.T  # (B, T − 1, n_b + 1): x_t predicts b_{t+1}
        ce_item = F.cross_entropy(item_logits.float(), items[real])
        ce_behavior = F.cross_entropy(behavior_logits.flatten(0, 1).float(), behaviors[:, 1:].flatten(), ignore_index=0)
        return ce_item + self.config.alpha * ce_behavior

    def fit(self, split: Split) -> FitReport:
        cfg, dev = self.config, self.ctx.device
        users, lengths = split.train_sequences()
        optimizer = torch.optim.Adam(self.net.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        state = {"rng": np.random.default_rng(0)}

        def loss_of(idx: np.ndarray) -> torch.Tensor:
            # The most recent T events, or with probability 0.2 a random contiguous window (one per user).
            ends = window_ends(lengths[idx], cfg.max_len, cfg.random_window_prob, state["rng"])
            return self.loss(split.train_windows(users[idx], ends, cfg.max_len))

        def run_epoch(epoch: int) -> float:
            seed = self.ctx.epoch_seed(epoch)
            state["rng"] = np.random.default_rng(seed)
            return minibatch_epoch(len(users), cfg.batch_size, seed, 0, optimizer, dev, loss_of)

        return fit_model(self, self.net, optimizer, run_epoch, split, "GEAR")

    @torch.no_grad()
    def score(self, histories: Histories) -> torch.Tensor:
        """History's last T − 1 events, then the target behavior (buy) with the last history timestamp."""
        self.net.eval()
        items, behaviors, times = self._window_tensors(histories.last(self.config.max_len - 1))
        behaviors = torch.cat([behaviors, torch.full_like(behaviors[:, :1], BUY + 1)], dim=1)
        times = torch.cat([times, times[:, -1:]], dim=1)  # the target's time is not known: gap 0
        z = self.net(items, behaviors, times)
        return (z[:, -1] @ self.net.items.weight[1:].T).float()
