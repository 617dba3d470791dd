"""RCLRec's diagnostic variants (``bench diagnose``): five questions that need behavior the model lacks.

One subclass of :class:`~rclrec.model.RCLRec`; each option changes one thing and shares everything else.
All but the backbone share θ0 as well (its cache key covers ``rclrec/model.py``, not this file); the
backbone changes the network, so its θ0 is its own (the key then also covers this file):

* **QAL on the selection module only** (``qal_scope: selection``). In the paper, λ·L_qual's gradient
  reaches every parameter on the path from the prefix mask to the target's likelihood: the selection
  module (user query), and also the encoder and the decoder. Here it reaches only the selection module
  (W_u, the user embeddings and the query MLP); the encoder and decoder learn from L_SFT alone. If this
  variant matches the full model, QAL works through what it selects; if it matches w/o QAL, QAL's effect
  came through the backbone.
* **Inference reading** (``generated_prefix: true``, test time only). The paper does not say how the
  prefix is built at inference; this project's choice is the RCPM selection, exactly as in training. Here
  the fine-tuned decoder instead generates its own prefix, k items one after another (each the best
  complete item of a trie-constrained beam search from [e_pay ; items so far]), then the target. L_SFT
  trains every prefix token, so the decoder has learned to write a prefix.
* **Fine-tuning at all** (``fine_tune: false``). θ0 itself, decoding from [e_pay] alone, as its own
  validation score is measured: the test of whether stage 2 (any prefix, or none) adds anything to the
  pre-trained model. Shares θ0; trains nothing.
* **Fine-tuning learning rate** (``sft_lr_scale``). The paper gives no learning rate for stage 2; this
  project fine-tunes at stage 1's (the grid's ``learning_rate`` sets both). Here stage 2 runs at 0.1× and
  0.01× of it. If a gentler stage 2 beats θ0 where the configured one does not, the recipe explains the
  gap, not the curriculum. Shares θ0.
* **Backbone** (``backbone: token``). RCLRec's encoder reads one vector per interaction (the sum of its
  item's L code embeddings plus its behavior's) and decodes with per-level heads. TIGER's and MBGen's
  encoders read one token per code, and MBGen ties its output heads to the token table. Here the encoder
  reads N·L tokens (each code's embedding plus its interaction's behavior embedding; the per-level code
  tables already tell the levels apart, so no separator), the decoder cross-attends to all of them, RCPM
  scores each interaction by the mean of its L token states, and the heads are the tied, d^-1/2-scaled
  token table. If this closes the gap to TIGER, the backbone explains it, not the curriculum.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from bench.data.split import Histories, Split
from bench.errors import BenchError
from bench.hashing import source_hash
from bench.nn.codegen import CodeDecoder
from bench.recommender import Context, FitReport
from bench.training import autocast
from rclrec.model import RCLRec, RCLRecConfig, RCLRecNet


@dataclass(frozen=True)
class RCLRecDiagnosticConfig(RCLRecConfig):
    qal_scope: str = "all"
    """``all``: the paper's λ·L_qual on every parameter; ``selection``: on the selection module only."""
    generated_prefix: bool = False
    """At test time only (never at validation): the decoder generates its own k-item prefix."""
    fine_tune: bool = True
    """``false``: stop after stage 1 and test θ0 as it is, decoding from [e_pay] alone."""
    backbone: str = "interaction"
    """``interaction``: RCLRec's encoder (one vector per interaction, per-level heads); ``token``: one token
    per code and tied heads, as TIGER and MBGen have."""
    sft_lr_scale: float = 1.0
    """Stage 2's learning rate as a multiple of ``learning_rate`` (stage 1 keeps it, so θ0 is shared)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.qal_scope not in ("all", "selection"):
            raise BenchError(f"rclrec: qal_scope '{self.qal_scope}' is not one of all, selection")
        if self.generated_prefix and self.inference_prefix != "same":
            raise BenchError("rclrec: generated_prefix and inference_prefix are two test-time prefixes; set one")
        if self.backbone not in ("interaction", "token"):
            raise BenchError(f"rclrec: backbone '{self.backbone}' is not one of interaction, token")
        if not self.sft_lr_scale > 0:
            raise BenchError(f"rclrec: sft_lr_scale = {self.sft_lr_scale} must be > 0")


class TokenRCLRecNet(RCLRecNet):
    """RCLRec's network with one encoder token per code and tied output heads (the backbone question).
    Shapes: B batch, N history items, L semantic levels, d width."""

    def __init__(self, cfg: RCLRecConfig, vocab_sizes: tuple[int, ...], user_cardinalities: list[int]) -> None:
        super().__init__(cfg, vocab_sizes, user_cardinalities)
        # The same backbone, behind a code table whose rows are also the output heads (MBGen's T5 head).
        self.codes = CodeDecoder(self.codes.backbone, vocab_sizes, tied=True)

    def encode(self, codes: torch.Tensor, behaviors: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """codes (B, N, L), behaviors (B, N), mask (B, N) → token states (B, N·L, d), pad (B, N·L); token
        (n, l) is code l of interaction n plus that interaction's behavior embedding."""
        b, n, levels = codes.shape
        x = self.codes.embed_codes(codes) + self.behavior(behaviors.clamp(min=0))[:, :, None]  # (B, N, L, d)
        pad = (~mask).repeat_interleave(levels, dim=1)
        return self.codes.backbone.encode(x.reshape(b, n * levels, -1), pad), pad


def interaction_pad(pad: torch.Tensor, levels: int) -> torch.Tensor:
    """Token pad (B, N·L) → interaction pad (B, N): an interaction's L tokens are padded together."""
    return pad[:, ::levels]


def per_interaction(states: torch.Tensor, pad: torch.Tensor, levels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token states (B, N·L, d) and pad (B, N·L) → the mean of each interaction's L states (B, N, d) and
    its pad (B, N): what RCPM scores under the one-token-per-code encoder."""
    b, t, d = states.shape
    return states.reshape(b, t // levels, levels, d).mean(dim=2), interaction_pad(pad, levels)


def selection_parameters(net: RCLRecNet) -> list[nn.Parameter]:
    """The selection module's parameters: W_u, the user-ID and user-feature embeddings, the query MLP.
    (e_pay, which the query also reads, is the decoder's purchase BOS and stays with the backbone.)"""
    return [p for part in (net.user_id, net.user_features, net.w_u, net.query) for p in part.parameters()]


@torch.no_grad()
def generate_prefix(model: RCLRec, net: RCLRecNet, states: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
    """(B, k) item indices the decoder writes after e_pay, each the top item of a constrained beam search
    from [e_pay ; the items before it]; states (B, N, d), pad (B, N) from the encoder."""
    b, levels = len(states), net.levels
    start, start_pad = model._decoder_start(net, b, None, None, None)
    items = []
    for _ in range(model.config.k):
        top, _ = net.codes.generate(states, pad, start, model.trie, model.beam_width, 1, start_pad=start_pad)
        item = top[:, 0]
        items.append(item)
        start = torch.cat([start, net.codes.embed_codes(model.item_codes[item])], dim=1)
        start_pad = torch.cat([start_pad, torch.zeros(b, levels, dtype=torch.bool, device=start.device)], dim=1)
    return torch.stack(items, dim=1)


class RCLRecDiagnostic(RCLRec):
    Config = RCLRecDiagnosticConfig
    config: RCLRecDiagnosticConfig

    def __init__(self, config: RCLRecDiagnosticConfig, ctx: Context) -> None:
        super().__init__(config, ctx)
        if config.backbone == "token":
            cardinalities = [table.num_embeddings - 1 for table in self.net.user_features]
            self.net = TokenRCLRecNet(config, self.ids.vocab_sizes, cardinalities).to(ctx.device)

    def _fit(self, split: Split) -> FitReport:
        """Both stages, or with ``fine_tune: false`` stage 1 only: θ0 (trained or cached) and its record."""
        if self.config.fine_tune:
            return super()._fit(split)
        return self.pretrain(split)  # leaves stage = "pretrain": decoding from [e_pay] alone

    def _loop(self, *args: Any, **kwargs: Any) -> FitReport:
        """A stage as :class:`RCLRec` trains it; stage 2 at ``sft_lr_scale`` × the learning rate. The stage's
        optimizer reads the config, so the config is swapped for the stage's duration (model.py stays as it
        is: its source is part of θ0's cache key)."""
        if self.stage != "sft" or self.config.sft_lr_scale == 1.0:
            return super()._loop(*args, **kwargs)
        configured = self.config
        self.config = dataclasses.replace(configured, learning_rate=configured.learning_rate * configured.sft_lr_scale)
        try:
            return super()._loop(*args, **kwargs)
        finally:
            self.config = configured

    @classmethod
    def shared_stage(cls, config: RCLRecDiagnosticConfig, seed: int) -> Hashable:
        """RCLRec's θ0, or with the token backbone another network's."""
        theta0 = super().shared_stage(config, seed)
        return theta0 if config.backbone == "interaction" else (*theta0, "token backbone")

    @classmethod
    def theta0_name(cls, config: RCLRecDiagnosticConfig, ctx: Context, codes: np.ndarray) -> str:
        """RCLRec's name, and for the token backbone also this file's code: that θ0 is another network."""
        key = super().theta0_name(config, ctx, codes)
        if config.backbone == "interaction":
            return key
        return f"{key}-token-{source_hash(Path(__file__))[:16]}"

    def _items_view(self, states: torch.Tensor, pad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The encoder output as RCPM reads it: per interaction, (B, N, d) and (B, N)."""
        return per_interaction(states, pad, self.net.levels) if self.config.backbone == "token" else (states, pad)

    def curriculum(
        self, net: RCLRecNet, h: Histories, states: torch.Tensor, pad: torch.Tensor, items: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """RCLRec's prefix, scored per interaction (the decoder still reads every token's state)."""
        return super().curriculum(net, h, *self._items_view(states, pad), items)

    def _test_time_prefix(
        self, pad: torch.Tensor, items: torch.Tensor, codes: torch.Tensor, slot_pad: torch.Tensor, m: torch.Tensor,
        index: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # fmt: skip
        """RCLRec's test-time prefix, its last-k window taken over interactions, not tokens."""
        item_pad = interaction_pad(pad, self.net.levels) if self.config.backbone == "token" else pad
        return super()._test_time_prefix(item_pad, items, codes, slot_pad, m, index)

    def sft_loss(self, h: Histories, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """The paper's loss, or with ``qal_scope: selection`` a loss of the same value whose gradient is
        ∇L_SFT everywhere plus λ·∇L_qual on the selection module only: L_qual's gradient there, g, enters
        as the surrogate Σ g·θ (g held constant), which is 0 in value and g in gradient."""
        out = super().sft_loss(h, target)
        if self.config.qal_scope == "all" or "qual" not in out:
            return out
        params = selection_parameters(self.net)
        grads = torch.autograd.grad(out["qual"], params, retain_graph=True, allow_unused=True)
        surrogate = sum((g.detach() * p).sum() for g, p in zip(grads, params) if g is not None)
        qual = out["qual"].detach() + surrogate - surrogate.detach()
        return {**out, "loss": out["sft"] + self.config.lam * qual}

    @torch.no_grad()
    def recommend(self, histories: Histories, k: int) -> np.ndarray:
        """With ``generated_prefix``, at test time: [e_pay ; the decoder's own k items] is forced, then
        beam search for the target. Otherwise (and always during fitting) as :class:`RCLRec`."""
        testing = not self._fitting and self._targets is not None and len(self._targets) == len(histories)
        if not (self.config.generated_prefix and testing and self.stage == "sft" and self.config.prefix != "none"):
            return super().recommend(histories, k)
        net = self.net.eval()
        with autocast(self.ctx.device):
            states, pad, _ = self._encode(net, histories)
            prefix = generate_prefix(self, net, states, pad)
            codes = self.item_codes[prefix]  # (B, k, L)
            slot_pad = torch.zeros(prefix.shape, dtype=torch.bool, device=prefix.device)
            start, start_pad = self._decoder_start(net, len(histories), codes, slot_pad, torch.ones(prefix.shape, device=prefix.device))
            out, _ = net.codes.generate(states, pad, start, self.trie, max(self.beam_width, k), k, start_pad=start_pad)
        return out.cpu().numpy()
