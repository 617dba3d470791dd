"""RCLRec's diagnostic variants (``bench diagnose``): two questions that need behavior the model lacks.

Both are subclasses of :class:`~rclrec.model.RCLRec` that change one thing and share everything else,
θ0 included (its cache key covers ``rclrec/model.py``, not this file):

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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from bench.data.split import Histories
from bench.errors import BenchError
from bench.training import autocast
from rclrec.model import RCLRec, RCLRecConfig, RCLRecNet


@dataclass(frozen=True)
class RCLRecDiagnosticConfig(RCLRecConfig):
    qal_scope: str = "all"
    """``all``: the paper's λ·L_qual on every parameter; ``selection``: on the selection module only."""
    generated_prefix: bool = False
    """At test time only (never at validation): the decoder generates its own k-item prefix."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.qal_scope not in ("all", "selection"):
            raise BenchError(f"rclrec: qal_scope '{self.qal_scope}' is not one of all, selection")
        if self.generated_prefix and self.inference_prefix != "same":
            raise BenchError("rclrec: generated_prefix and inference_prefix are two test-time prefixes; set one")


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
