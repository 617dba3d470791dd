"""The decoder side of semantic-ID generation, shared by TIGER, MBGen and RCLRec.

Decoder input = ``start`` embeddings chosen by the model (TIGER: [BOS]; MBGen: [BOS, e_buy]; RCLRec:
[e_pay ; curriculum]) followed by the target's code embeddings; level l's token is predicted from the
position before it by its own head (per-level vocabularies, as in the TIGER re-implementations), or, tied,
by the level's rows of the token table scaled by d^-1/2 (MBGen's T5 head).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from bench.nn.beam import PrefixTrie, beam_search
from bench.nn.transformer import EncoderDecoder, Routing
from bench.recommender import Context, GenerativeModel
from bench.semantic_ids import random_like

RoutingFn = Callable[[torch.Tensor, int], Routing]
"""routing(slots (T,) int64 decoder slots, rows) → the Routing of those slots for ``rows`` decoding rows."""


class SemanticIdModel(GenerativeModel):
    """A generative model over the split's semantic IDs: each item's code tuple (``item_codes``, (I, L)
    int64 on the device), the prefix trie of the constrained beam search and its width (at least the
    list size). Its config needs a ``beam_width``."""

    def __init__(self, config: object, ctx: Context) -> None:
        super().__init__(config, ctx)
        self.ids = ctx.semantic_ids()
        if getattr(config, "random_ids", False):  # the diagnosis's control: codes that encode nothing
            self.ids = random_like(self.ids, ctx.seed)
        self.item_codes = torch.as_tensor(self.ids.codes, device=ctx.device)
        self.trie = PrefixTrie.from_codes(self.ids.codes, self.ids.vocab_sizes).to(ctx.device)
        self.beam_width = max(config.beam_width, self.list_size)

    def generation_stats(self, ranks: np.ndarray) -> dict[str, Any]:
        """The generic statistics, plus, on random codes, those codes' own collisions and fingerprint (the
        result's ``semantic_ids`` records the split's fitted codes, from which their shape is drawn)."""
        out = super().generation_stats(ranks)
        if self.ids.stats.get("random"):
            out["random_codes"] = dict(self.ids.stats)
        return out


class CodeDecoder(nn.Module):
    """Code embeddings (one row per (level, token)) and per-level output heads around a backbone."""

    def __init__(self, backbone: EncoderDecoder, vocab_sizes: tuple[int, ...], tied: bool = False) -> None:
        super().__init__()
        d = backbone.cfg.d_model
        self.backbone = backbone
        self.vocab_sizes = vocab_sizes
        self.register_buffer("offsets", torch.tensor([0, *vocab_sizes[:-1]]).cumsum(0), persistent=False)
        self.code_emb = nn.Embedding(sum(vocab_sizes), d)
        self.heads = None if tied else nn.ModuleList(nn.Linear(d, v, bias=False) for v in vocab_sizes)

    def logits(self, hidden: torch.Tensor, level: int) -> torch.Tensor:
        """hidden (..., d) → (..., V_level) logits of level ``level``'s tokens."""
        if self.heads is not None:
            return self.heads[level](hidden)
        start = int(self.offsets[level])
        table = self.code_emb.weight[start : start + self.vocab_sizes[level]]
        return (hidden * hidden.shape[-1] ** -0.5) @ table.T.to(hidden.dtype)

    def embed_codes(self, codes: torch.Tensor, first_level: int = 0) -> torch.Tensor:
        """codes (..., T) tokens of levels first_level … first_level + T − 1 → (..., T, d)."""
        t = codes.shape[-1]
        return self.code_emb(codes + self.offsets[first_level : first_level + t])

    def nll(
        self,
        memory: torch.Tensor,
        pad: torch.Tensor,
        start: torch.Tensor,
        codes: torch.Tensor,
        routing: Routing | None = None,
    ) -> torch.Tensor:
        """Teacher-forced per-token NLL of the target codes.

        Args:
            memory, pad: encoder output (B, S, d) and its padding (B, S).
            start: (B, P, d) forced decoder inputs before the target.
            codes: (B, L) target codes.
            routing: over the (B, P + L − 1) decoder inputs, for a routed backbone.

        Returns:
            (B, L) negative log-likelihood of each target token.
        """
        levels = codes.shape[1]
        y = torch.cat([start, self.embed_codes(codes[:, :-1])], dim=1)
        hidden = self.backbone.decode(y, memory, pad, routing=routing)[:, start.shape[1] - 1 :]
        out = []
        for level in range(levels):
            logp = torch.log_softmax(self.logits(hidden[:, level], level).float(), dim=-1)
            out.append(-logp.gather(1, codes[:, level : level + 1]).squeeze(1))
        return torch.stack(out, dim=1)

    @torch.no_grad()
    def generate(
        self,
        memory: torch.Tensor,
        pad: torch.Tensor,
        start: torch.Tensor,
        trie: PrefixTrie,
        width: int,
        k: int,
        use_cache: bool = True,
        start_pad: torch.Tensor | None = None,
        first_level: int = 0,
        routing: RoutingFn | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Constrained beam search → (B, k) items and their log-likelihoods (see :func:`beam_search`).

        ``start_pad`` (B, P) marks leading padding of the forced ``start`` (rows with a shorter prefix).
        ``first_level``: the trie's level 0 is this decoder level (MBGen forces the behavior level in
        ``start`` and generates the item's codes after it). ``routing`` gives a routed backbone the
        routing of each decoder slot.

        ``use_cache=False`` recomputes the whole decoder prefix at every step over a per-beam copy of the
        memory, the way MBGen's official code decodes; it exists for the speed benchmark and as a check.
        """
        p = start.shape[1]

        def route(first: int, end: int, rows: int) -> Routing | None:
            """The routing of decoder slots first … end − 1 for ``rows`` rows (None: not routed)."""
            return None if routing is None else routing(torch.arange(first, end, device=start.device), rows)

        if use_cache:
            cache = self.backbone.start_cache(memory, pad)
            h0 = self.backbone.decode_step(start, cache, start_pad, route(0, p, len(start)))
            first = self.logits(h0[:, -1], first_level)

            def step(tokens: torch.Tensor, level: int) -> torch.Tensor:
                y = self.code_emb(tokens + self.offsets[first_level + level - 1])[:, None]
                h = self.backbone.decode_step(y, cache, routing=route(p + level - 1, p + level, len(tokens)))
                return self.logits(h[:, -1], first_level + level)

            return beam_search(first, step, cache.select, trie, width, k)

        y_pad = start_pad if start_pad is not None else torch.zeros(start.shape[:2], dtype=torch.bool, device=start.device)
        state = {"y": start, "memory": memory, "pad": pad, "y_pad": y_pad}
        h0 = self.backbone.decode(start, memory, pad, y_pad, route(0, p, len(start)))
        first = self.logits(h0[:, -1], first_level)

        def select(rows: torch.Tensor, w: int) -> None:
            state["y"], state["y_pad"] = state["y"][rows], state["y_pad"][rows]
            state["memory"] = memory.repeat_interleave(w, dim=0)  # rows are grouped by input, w per input
            state["pad"] = pad.repeat_interleave(w, dim=0)

        def step_recompute(tokens: torch.Tensor, level: int) -> torch.Tensor:
            y = self.code_emb(tokens + self.offsets[first_level + level - 1])[:, None]
            state["y"] = torch.cat([state["y"], y], dim=1)
            state["y_pad"] = torch.cat([state["y_pad"], state["y_pad"].new_zeros(len(tokens), 1)], dim=1)
            t = state["y"].shape[1]
            h = self.backbone.decode(state["y"], state["memory"], state["pad"], state["y_pad"], route(0, t, len(tokens)))
            return self.logits(h[:, -1], first_level + level)

        return beam_search(first, step_recompute, select, trie, width, k)
