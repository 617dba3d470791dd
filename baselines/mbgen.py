"""MBGen (Liu, Hou, McAuley, CIKM 2024, "Multi-Behavior Generative Recommendation"), after the public code
anananan116/MBGen (../shared/notes/baselines/mbgen.md).

Every interaction becomes the tokens [b, c_1, …, c_L]: its behavior first (intent), then the item's
semantic ID. The encoder reads [user, events…, EOS]; the feed-forward input of its first two layers is the
token concatenated with a behavior embedding (the event's behavior on its code tokens, none elsewhere).
The decoder predicts [b, c_1, …, c_L] of the next interaction behind BOS; its feed-forward layers are
position-routed experts, one per predicted token (slot s predicts token s and uses expert s), and its first
two layers get the target behavior injected the same way. One token table serves encoder, decoder and the
tied output (scaled by d^-1/2, as in T5). Training: token NLL of the next interaction after every training
prefix, any behavior, so the behavior is learned too. Ranking: the decoder is prompted with
[BOS, buy] and generates the codes by constrained beam search.

Adaptations (README): the shared backbone (learned positions, LayerNorm, GELU) instead of T5's relative
bias, RMSNorm and ReLU; the shared semantic IDs; per-level softmax (constrained decoding) so EOS, always
certain after the last level, is dropped; duplicate items cannot occur (the official top-10 lists can
repeat an item); selection on validation buy targets.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from bench.data.log import BEHAVIORS, BUY
from bench.data.split import Histories, Split
from bench.nn.codegen import CodeDecoder, SemanticIdModel
from bench.nn.transformer import BackboneConfig, EncoderDecoder, Routing
from bench.recommender import Context, FitReport
from bench.training import autocast, fit_model, minibatch_epoch


@dataclass(frozen=True)
class MBGenConfig:
    d_model: int = 256
    n_heads: int = 4
    encoder_layers: int = 4
    decoder_layers: int = 4
    d_ff: int = 512
    dropout: float = 0.0
    inject_layers: int = 2
    """Layers of each stack whose feed-forward input is [x ; e_b]."""
    behavior_dim: int = 64
    max_items: int = 50
    user_buckets: int = 2000
    """Hashed user tokens (user index mod buckets); 0 turns the user token off."""
    beam_width: int = 20
    learning_rate: float = 1e-3
    weight_decay: float = 0.005
    batch_size: int = 256
    epochs: int = 200
    patience: int = 10
    samples_per_epoch: int = 0
    """Next-interaction samples drawn per epoch (seeded, without replacement); 0 = all of them."""


class MBGenNet(nn.Module):
    """Token table, the routed encoder-decoder and the special tokens.

    The code decoder's levels are (behavior, c_1, …, c_L); its one table holds their tokens, and the user,
    EOS and BOS tokens sit beside it. Shapes: B batch, N events, L code levels, E = L + 1 tokens per event.
    """

    def __init__(self, cfg: MBGenConfig, item_vocab: tuple[int, ...]) -> None:
        super().__init__()
        levels = (len(BEHAVIORS), *item_vocab)
        backbone = EncoderDecoder(
            dataclasses.replace(
                BackboneConfig.of(cfg),
                decoder_experts=len(levels),  # one expert per predicted token: b, c_1, …, c_L
                inject_layers=cfg.inject_layers,
                behavior_vocab=len(BEHAVIORS) + 1,  # 0 = no behavior
                behavior_dim=cfg.behavior_dim,
            )
        )
        self.codes = CodeDecoder(backbone, levels, tied=True)
        self.bos = nn.Parameter(torch.randn(1, 1, cfg.d_model) * 0.02)
        self.eos = nn.Parameter(torch.randn(cfg.d_model) * 0.02)
        self.user = nn.Embedding(cfg.user_buckets, cfg.d_model) if cfg.user_buckets > 0 else None

    def encode(self, behaviors: torch.Tensor, codes: torch.Tensor, mask: torch.Tensor, users: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """behaviors (B, N), codes (B, N, L) (any value where padded), mask (B, N) True on real events,
        users (B,) → memory (B, S, d), pad (B, S) with S = [1 +] N·E + 1: [user, events…, EOS]."""
        b, n = behaviors.shape
        tokens = torch.cat([behaviors.clamp(min=0)[..., None], codes], dim=2)  # (B, N, E)
        e = tokens.shape[2]
        x = self.codes.embed_codes(tokens).reshape(b, n * e, -1)
        pad = (~mask).repeat_interleave(e, dim=1)
        # Behavior injection: an event's code tokens carry its behavior (1-based); its behavior token does not.
        inject = torch.where(mask, behaviors + 1, 0)[..., None].expand(b, n, e).clone()
        inject[..., 0] = 0
        inject = inject.reshape(b, n * e)
        x = torch.cat([x, self.eos.expand(b, 1, -1)], dim=1)
        pad = torch.cat([pad, torch.zeros_like(pad[:, :1])], dim=1)
        inject = torch.cat([inject, torch.zeros_like(inject[:, :1])], dim=1)
        if self.user is not None:
            x = torch.cat([self.user(users % self.user.num_embeddings)[:, None], x], dim=1)
            pad = torch.cat([torch.zeros_like(pad[:, :1]), pad], dim=1)
            inject = torch.cat([torch.zeros_like(inject[:, :1]), inject], dim=1)
        routing = Routing(torch.zeros_like(inject), inject)  # the encoder is dense (one expert), as upstream
        return self.codes.backbone.encode(x, pad, routing), pad

    @staticmethod
    def decoder_routing(slots: torch.Tensor, behavior: torch.Tensor) -> Routing:
        """slots (T,) decoder slots, behavior (R,) target behavior code → Routing over (R, T): slot s
        predicts token s and uses expert s; slot 0 (BOS) gets no behavior, later slots the target's."""
        r, t = len(behavior), len(slots)
        expert = slots[None].expand(r, t)
        return Routing(expert, torch.where(slots[None] == 0, 0, (behavior + 1)[:, None]).expand(r, t))


class MBGen(SemanticIdModel):
    Config = MBGenConfig

    def __init__(self, config: MBGenConfig, ctx: Context) -> None:
        super().__init__(config, ctx)
        self.net = MBGenNet(config, self.ids.vocab_sizes).to(ctx.device)

    def _encode(self, h: Histories) -> tuple[torch.Tensor, torch.Tensor]:
        n, dev = self.config.max_items, self.ctx.device
        items = torch.as_tensor(h.items[:, -n:], device=dev)
        behaviors = torch.as_tensor(h.behaviors[:, -n:], device=dev)
        codes = self.item_codes[items.clamp(min=0)]
        return self.net.encode(behaviors, codes, items >= 0, torch.as_tensor(h.users, device=dev))

    def fit(self, split: Split) -> FitReport:
        user, end = split.next_item_samples()  # every training prefix; its next interaction, any behavior
        cfg, dev = self.config, self.ctx.device
        optimizer = torch.optim.AdamW(self.net.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)

        def loss_of(idx: np.ndarray) -> torch.Tensor:
            h = split.train_windows(user[idx], end[idx], cfg.max_items)
            at = split.offsets[user[idx]] + end[idx]
            item = torch.as_tensor(split.items[at], device=dev)
            behavior = torch.as_tensor(split.behaviors[at].astype(np.int64), device=dev)
            target = torch.cat([behavior[:, None], self.item_codes[item]], dim=1)  # (B, 1 + L)
            memory, pad = self._encode(h)
            routing = self.net.decoder_routing(torch.arange(target.shape[1], device=dev), behavior)
            start = self.net.bos.expand(len(idx), -1, -1)
            return self.net.codes.nll(memory, pad, start, target, routing).mean()  # mean token NLL, as upstream

        def run_epoch(epoch: int) -> float:
            seed = self.ctx.epoch_seed(epoch)
            return minibatch_epoch(len(user), cfg.batch_size, seed, cfg.samples_per_epoch, optimizer, dev, loss_of)

        return fit_model(self, self.net, optimizer, run_epoch, split, "MBGen")

    @torch.no_grad()
    def recommend(self, histories: Histories, k: int, use_cache: bool = True) -> np.ndarray:
        """Prompt [BOS, buy]; beam search over the item codes."""
        self.net.eval()
        b, dev = len(histories), self.ctx.device
        with autocast(dev):
            memory, pad = self._encode(histories)
            buy = torch.full((b,), BUY, device=dev)
            start = torch.cat([self.net.bos.expand(b, -1, -1), self.net.codes.embed_codes(buy[:, None])], dim=1)
            target = torch.tensor(BUY, device=dev)

            def routing(slots: torch.Tensor, rows: int) -> Routing:
                return self.net.decoder_routing(slots, target.expand(rows))

            items, _ = self.net.codes.generate(memory, pad, start, self.trie, max(self.beam_width, k), k,
                                               use_cache=use_cache, first_level=1, routing=routing)  # fmt: skip
        return items.cpu().numpy()
