"""TIGER (Rajput et al., NeurIPS 2023, "Recommender Systems with Generative Retrieval").

No official code exists; this follows the paper and the two known re-implementations
(../shared/notes/baselines/tiger.md). The encoder reads the flattened semantic tokens of the history
(each item's L codes and a learned SEP vector, no behavior or time input) after an optional hashed user
token; the decoder starts from a learned BOS and generates the L codes of the next item with per-level
heads. Training: teacher-forced token NLL of the next item of every training interaction (any behavior).
Evaluation: constrained beam search over the split's semantic IDs, on conversion targets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from bench.data.split import Histories, Split
from bench.nn.codegen import CodeDecoder, SemanticIdModel
from bench.nn.transformer import BackboneConfig, EncoderDecoder
from bench.recommender import Context, FitReport
from bench.training import autocast, fit_model, minibatch_epoch


@dataclass(frozen=True)
class TIGERConfig:
    d_model: int = 128
    n_heads: int = 4
    encoder_layers: int = 4
    decoder_layers: int = 4
    d_ff: int = 1024
    dropout: float = 0.1
    max_items: int = 20
    """History length in items (the paper's 20)."""
    user_buckets: int = 2000
    """Hashed user tokens (user index mod buckets); 0 turns the user token off."""
    beam_width: int = 20
    random_ids: bool = False
    """Diagnosis only: random collision-free codes of the same shape instead of the split's semantic IDs."""
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 256
    epochs: int = 50
    patience: int = 5
    samples_per_epoch: int = 0
    """Next-item samples drawn per epoch (seeded, without replacement); 0 = all of them."""


class TIGERNet(nn.Module):
    """Token tables and the encoder-decoder. Shapes: B batch, N items, L levels, d model width."""

    def __init__(self, cfg: TIGERConfig, vocab_sizes: tuple[int, ...]) -> None:
        super().__init__()
        backbone = EncoderDecoder(BackboneConfig.of(cfg))
        self.codes = CodeDecoder(backbone, vocab_sizes)  # one code table for encoder and decoder inputs
        self.sep = nn.Parameter(torch.randn(cfg.d_model) * 0.02)
        self.bos = nn.Parameter(torch.randn(1, 1, cfg.d_model) * 0.02)
        self.user = nn.Embedding(cfg.user_buckets, cfg.d_model) if cfg.user_buckets > 0 else None

    def encode(self, codes: torch.Tensor, mask: torch.Tensor, users: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """codes (B, N, L) history codes (any value where padded), mask (B, N) True on real items,
        users (B,) → memory (B, S, d), pad (B, S) with S = N·(L + 1) [+ 1]."""
        b, n, levels = codes.shape
        tokens = self.codes.embed_codes(codes)  # (B, N, L, d)
        tokens = torch.cat([tokens, self.sep.expand(b, n, 1, -1)], dim=2).reshape(b, n * (levels + 1), -1)
        pad = (~mask).repeat_interleave(levels + 1, dim=1)
        if self.user is not None:
            tokens = torch.cat([self.user(users % self.user.num_embeddings)[:, None], tokens], dim=1)
            pad = torch.cat([torch.zeros_like(pad[:, :1]), pad], dim=1)
        return self.codes.backbone.encode(tokens, pad), pad


class TIGER(SemanticIdModel):
    Config = TIGERConfig

    def __init__(self, config: TIGERConfig, ctx: Context) -> None:
        super().__init__(config, ctx)
        self.net = TIGERNet(config, self.ids.vocab_sizes).to(ctx.device)

    def _encode(self, h: Histories) -> tuple[torch.Tensor, torch.Tensor]:
        items = torch.as_tensor(h.items[:, -self.config.max_items :], device=self.ctx.device)
        mask = items >= 0
        codes = self.item_codes[items.clamp(min=0)]
        return self.net.encode(codes, mask, torch.as_tensor(h.users, device=self.ctx.device))

    def fit(self, split: Split) -> FitReport:
        user, end = split.next_item_samples()  # every training interaction after the first, any behavior
        cfg, device = self.config, self.ctx.device
        optimizer = torch.optim.AdamW(self.net.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)

        def loss_of(idx: np.ndarray) -> torch.Tensor:
            h = split.train_windows(user[idx], end[idx], cfg.max_items)
            target = torch.as_tensor(split.items[split.offsets[user[idx]] + end[idx]], device=device)
            memory, pad = self._encode(h)
            start = self.net.bos.expand(len(idx), -1, -1)
            return self.net.codes.nll(memory, pad, start, self.item_codes[target]).sum(1).mean()

        def run_epoch(epoch: int) -> float:
            seed = self.ctx.epoch_seed(epoch)
            return minibatch_epoch(len(user), cfg.batch_size, seed, cfg.samples_per_epoch, optimizer, device, loss_of)

        return fit_model(self, self.net, optimizer, run_epoch, split, "TIGER")

    @torch.no_grad()
    def recommend(self, histories: Histories, k: int) -> np.ndarray:
        self.net.eval()
        with autocast(self.ctx.device):
            memory, pad = self._encode(histories)
            start = self.net.bos.expand(len(histories), -1, -1)
            items, _ = self.net.codes.generate(memory, pad, start, self.trie, max(self.beam_width, k), k)
        return items.cpu().numpy()
