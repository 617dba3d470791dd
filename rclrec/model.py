"""RCLRec: reverse-curriculum learning for sparse conversions in generative recommendation (arXiv 2603.28124).

Reads top to bottom: config → network (encoder over interactions, behavior table whose rows are the
decoder's BOS e_b, the Reverse Curriculum Prefix Module) → losses → the two training stages → inference.

Stage 1 pre-trains the encoder-decoder on the next interaction of every behavior (decoder input
[e_b ; z_target], Eq. 1) and caches θ0 with its training record per (split, seed, pre-training config,
semantic IDs, this file's source), so every variant and sweep point starts from the same θ0. Stage 2
fine-tunes on conversions only: RCPM scores the encoder states with a pay-conditioned user query, takes
the top-k items, and feeds their semantic tokens in ascending order of relevance as a decoder prefix
[e_pay ; G ; z_target]; the NLL covers every decoder token (Eq. 6). A straight-through mask
m = m_hard − sg(p) + p scales the prefix embeddings, so the loss reaches p, the query and the encoder.
The quality-aware loss compares the target-token NLL with the prefix (current θ) against the frozen θ0
without prefix: L_qual = max(0, margin − (L_base − L_curr)).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import sys
import time
from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from filelock import FileLock
from torch import nn

from bench import recommender, seeding, training
from bench.data import split as split_module
from bench.data.log import BEHAVIORS, BUY
from bench.data.split import Histories, Split
from bench.errors import BenchError
from bench.hashing import config_hash, sources_hash
from bench.io import atomic_path
from bench.nn import beam, codegen, transformer
from bench.nn.codegen import CodeDecoder, SemanticIdModel
from bench.nn.transformer import BackboneConfig, EncoderDecoder
from bench.recommender import Context, FitReport, validation_ndcg10
from bench.semantic_ids import fingerprint, random_like
from bench.training import autocast, minibatch_epoch, train


@dataclass(frozen=True)
class RCLRecConfig:
    # Backbone (paper: L = 4, 4 + 2 layers, d = 256, 8 heads).
    d_model: int = 256
    n_heads: int = 8
    encoder_layers: int = 4
    decoder_layers: int = 2
    d_ff: int = 1024
    dropout: float = 0.1
    max_items: int = 50
    user_buckets: int = 2000
    """User-ID embedding rows (user index mod buckets), part of x_u with the log's user features."""
    # Reverse curriculum (paper: k = 4, τ = 0.5, λ_qual = 0.1; margin "small").
    k: int = 4
    tau: float = 0.5
    lam: float = 0.1
    margin: float = 0.05
    max_prefix_items: int = 8
    """Upper bound on k (the decoder's positions are relative, so θ0 is the same for every k)."""
    prefix: Literal["rcpm", "recent", "none"] = "rcpm"
    """rcpm: the full model; recent: the k most recent items (Table 2's Recent-k); none: w/o RCPM."""
    # Training.
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 256
    pretrain_epochs: int = 50
    pretrain_patience: int = 5
    pretrain_samples_per_epoch: int = 0
    """Next-interaction samples per pre-training epoch (seeded); 0 = all."""
    epochs: int = 50
    patience: int = 5
    beam_width: int = 20
    random_ids: bool = False
    """Diagnosis only: random collision-free codes of the same shape instead of the split's semantic IDs."""
    inference_prefix: str = "same"
    """Diagnosis only, at test time (never at validation): ``same`` builds the prefix as training did;
    ``recent`` feeds the k most recent items to the fine-tuned model; ``oracle`` puts the target itself in
    the last (most relevant) slot — leaking by design, to bound what a perfect selection could give."""

    def __post_init__(self) -> None:
        """Values that can only break a run fail when the config is built, before anything trains."""
        if not 1 <= self.k <= self.max_prefix_items:
            raise BenchError(f"rclrec: k = {self.k} must be between 1 and max_prefix_items = {self.max_prefix_items}")
        if not self.tau > 0:
            raise BenchError(f"rclrec: tau = {self.tau} must be > 0 (the relevance scores are divided by it)")
        if self.lam < 0 or self.margin < 0:
            raise BenchError(f"rclrec: lam = {self.lam} and margin = {self.margin} must be >= 0")
        if self.prefix not in ("rcpm", "recent", "none"):
            raise BenchError(f"rclrec: prefix '{self.prefix}' is not one of rcpm, recent, none")
        if self.inference_prefix not in ("same", "recent", "oracle"):
            raise BenchError(f"rclrec: inference_prefix '{self.inference_prefix}' is not one of same, recent, oracle")


PRETRAIN_FIELDS = (
    "d_model", "n_heads", "encoder_layers", "decoder_layers", "d_ff", "dropout", "max_items", "user_buckets",
    "max_prefix_items",
    "learning_rate", "weight_decay", "batch_size", "pretrain_epochs", "pretrain_patience",
    "pretrain_samples_per_epoch",
)  # fmt: skip
"""The fields θ0 depends on; k, τ, λ, margin and the prefix kind do not change it."""
THETA0_SOURCES = tuple(
    Path(module.__file__)  # type: ignore[arg-type]
    for module in (sys.modules[__name__], transformer, codegen, beam, training, recommender, split_module, seeding)
)
"""The files whose code trains θ0 and selects its epoch: this model, the backbone, the decoder and its beam
search, the training loop and early stopping, validation, the split's windows and samples, the seeding."""


class RCLRecNet(nn.Module):
    """Shapes: B batch, N history items, L semantic levels, d width, k curriculum length."""

    def __init__(self, cfg: RCLRecConfig, vocab_sizes: tuple[int, ...], user_cardinalities: list[int]) -> None:
        super().__init__()
        self.levels = len(vocab_sizes)
        backbone = EncoderDecoder(BackboneConfig.of(cfg))
        self.codes = CodeDecoder(backbone, vocab_sizes)
        self.behavior = nn.Embedding(len(BEHAVIORS), cfg.d_model)  # E; row b is the decoder BOS e_b
        # x_u: a user-ID embedding and one embedding per user feature (demographics when the log has them).
        self.user_id = nn.Embedding(cfg.user_buckets, cfg.d_model)
        self.user_features = nn.ModuleList(nn.Embedding(c + 1, cfg.d_model) for c in user_cardinalities)
        self.w_u = nn.Linear(cfg.d_model * (1 + len(user_cardinalities)), cfg.d_model)
        self.query = nn.Sequential(nn.Linear(2 * cfg.d_model, cfg.d_model), nn.GELU(), nn.Linear(cfg.d_model, cfg.d_model))

    def encode(self, codes: torch.Tensor, behaviors: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """codes (B, N, L), behaviors (B, N), mask (B, N) True on real items → states (B, N, d), pad (B, N).
        An interaction's embedding is the sum of its item's L code embeddings plus its behavior's."""
        x = self.codes.embed_codes(codes).sum(dim=2) + self.behavior(behaviors.clamp(min=0))
        pad = ~mask
        return self.codes.backbone.encode(x, pad), pad

    def user_query(self, users: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """q = MLP([W_u x_u ; e_pay]); users (B,), features (B, F) codes (-1 unknown) → (B, d)."""
        parts = [self.user_id(users % self.user_id.num_embeddings)]
        parts += [table(features[:, j] + 1) for j, table in enumerate(self.user_features)]
        x_u = self.w_u(torch.cat(parts, dim=1))
        e_pay = self.behavior.weight[BUY].expand(len(users), -1)
        return self.query(torch.cat([x_u, e_pay], dim=1))


def relevance(q: torch.Tensor, states: torch.Tensor, pad: torch.Tensor, tau: float) -> torch.Tensor:
    """p = softmax(s / τ) with s_t = q·h_t / √d over real positions; (B, d), (B, N, d), (B, N) → (B, N)."""
    s = torch.einsum("bd,bnd->bn", q.float(), states.float()) / math.sqrt(q.shape[-1])
    return torch.softmax((s / tau).masked_fill(pad, -float("inf")), dim=-1)


def select_top_k(p: torch.Tensor, pad: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of the k largest p, in ASCENDING order of p (most relevant last, next to the target).

    Returns index (B, k) and slot_pad (B, k) True on empty slots, which come first (histories with fewer
    than k items use all of them)."""
    k_eff = min(k, p.shape[1])
    score = p.masked_fill(pad, -1.0)  # padding never wins over a real item (p >= 0)
    top = score.topk(k_eff, dim=1).indices  # descending
    index = top.flip(1)  # ascending: empty slots (score -1) first
    slot_pad = score.gather(1, index) < 0
    if k_eff < k:
        fill = torch.zeros(len(p), k - k_eff, dtype=index.dtype, device=index.device)
        index = torch.cat([fill, index], dim=1)
        slot_pad = torch.cat([torch.ones_like(fill, dtype=torch.bool), slot_pad], dim=1)
    return index, slot_pad


def recent_k(pad: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k most recent positions, most recent last (histories are right-aligned: the last k columns);
    slots beyond a short history are empty. (B, N) → index (B, k), slot_pad (B, k)."""
    n = pad.shape[1]
    cols = torch.arange(n - k, n, device=pad.device)  # negative where the window is shorter than k
    index = cols.clamp(min=0).expand(len(pad), -1)
    return index, (cols < 0) | pad.gather(1, index)


def quality_loss(l_base: torch.Tensor, l_curr: torch.Tensor, margin: float) -> torch.Tensor:
    """L_qual = mean over samples of max(0, margin − (L_base − L_curr)) (Eq. 8): the prefix must lower the
    target-token NLL by at least ``margin`` against the frozen no-prefix θ0."""
    return F.relu(margin - (l_base - l_curr)).mean()


def straight_through(p: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """m = m_hard − sg(p) + p at the selected positions: exactly 1 forward, ∂m/∂p = 1 backward. (B, k)"""
    chosen = p.gather(1, index)
    return torch.ones_like(chosen) - chosen.detach() + chosen


class RCLRec(SemanticIdModel):
    Config = RCLRecConfig

    def __init__(self, config: RCLRecConfig, ctx: Context) -> None:
        super().__init__(config, ctx)  # semantic IDs, trie, beam width
        split = ctx.split
        names = sorted(split.user_features)
        self.user_feature_codes = torch.as_tensor(
            np.stack([split.user_features[n] for n in names], axis=1) if names else np.zeros((split.n_users, 0), int),
            device=ctx.device,
        )
        cardinalities = [int(split.user_features[n].max()) + 1 for n in names]
        self.net = RCLRecNet(config, self.ids.vocab_sizes, cardinalities).to(ctx.device)
        self.theta0: RCLRecNet | None = None
        self._fitting = False  # validation always decodes as training did; the diagnosis reads only the test
        self._targets: np.ndarray | None = None
        self._hits = {"prefix": 0, "recent_k": 0, "n": 0}
        self.stage: Literal["pretrain", "sft"] = "sft"
        """During pre-training, validation decodes from [e_pay] alone (no RCPM has been trained yet)."""

    # ------------------------------------------------------------------------------- inputs

    def _encode(self, net: RCLRecNet, h: Histories) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """→ encoder states (B, N, d), pad (B, N), item indices (B, N) of the history window."""
        dev = self.ctx.device
        items = torch.as_tensor(h.items[:, -self.config.max_items :], device=dev)
        behaviors = torch.as_tensor(h.behaviors[:, -self.config.max_items :], device=dev)
        states, pad = net.encode(self.item_codes[items.clamp(min=0)], behaviors, items >= 0)
        return states, pad, items

    def curriculum(
        self, net: RCLRecNet, h: Histories, states: torch.Tensor, pad: torch.Tensor, items: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The prefix: codes (B, k, L) of the selected items, slot_pad (B, k), mask m (B, k) and the
        selected positions (B, k). The same function serves training and inference."""
        k = self.config.k
        if self.config.prefix == "recent":
            index, slot_pad = recent_k(pad, k)
            m = torch.ones(index.shape, device=states.device)
        else:
            users = torch.as_tensor(h.users, device=states.device)
            q = net.user_query(users, self.user_feature_codes[users])
            p = relevance(q, states, pad, self.config.tau)
            index, slot_pad = select_top_k(p, pad, k)
            m = straight_through(p, index)
        codes = self.item_codes[items.gather(1, index).clamp(min=0)]
        return codes, slot_pad, m, index

    def _decoder_start(
        self, net: RCLRecNet, b: int, codes: torch.Tensor | None, slot_pad: torch.Tensor | None, m: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """[e_pay ; G]: (B, 1 + k·L, d) forced decoder inputs and their padding. Each selected item's L token
        embeddings are multiplied by its m_t.

        A history shorter than k leaves empty slots; they come first, before e_pay ([∅ … ∅ ; e_pay ; G_real]),
        so e_pay predicts the first real prefix token and every later token is predicted from the real
        token before it. Padded inputs are invisible and take no position, so a row with e empty slots is
        decoded exactly as the same prefix would be with k − e."""
        e_pay = net.behavior.weight[BUY].expand(b, 1, -1)
        no_pad = torch.zeros(b, 1, dtype=torch.bool, device=e_pay.device)
        if codes is None:
            return e_pay, no_pad
        g = net.codes.embed_codes(codes) * m[:, :, None, None].to(e_pay.dtype)  # (B, k, L, d)
        g_pad = slot_pad.repeat_interleave(codes.shape[2], dim=1)  # (B, k·L), empty slots lead
        start, start_pad = torch.cat([e_pay, g.reshape(b, -1, g.shape[-1])], dim=1), torch.cat([no_pad, g_pad], dim=1)
        # Move e_pay behind the empty slots: position j takes input j + 1 while j < #empty, then e_pay.
        j = torch.arange(start.shape[1], device=start.device)[None]
        empty = g_pad.sum(1, keepdim=True)
        order = torch.where(j < empty, j + 1, torch.where(j == empty, torch.zeros_like(j), j))
        return start.gather(1, order[..., None].expand_as(start)), start_pad.gather(1, order)

    # ------------------------------------------------------------------------------- losses

    def _token_nll(
        self, net: RCLRecNet, memory: torch.Tensor, pad: torch.Tensor, start: torch.Tensor, start_pad: torch.Tensor,
        targets: torch.Tensor,
    ) -> torch.Tensor:
        """Teacher-forced NLL of every decoder token after e_pay.

        The decoder reads [start ; z[:-1]] where start = [∅ … ; e_pay ; G_real] (B, P, d, see
        :meth:`_decoder_start`); position j predicts targets[:, j], with targets = [G's tokens ; z]
        (B, P − 1 + L), levels cycling 0 … L − 1 and −1 at empty slots. Since the e empty slots' e·L inputs
        come first and their targets are the first e·L entries, the input at position j is always the token
        before targets[:, j]: nothing is predicted from, or as, an empty slot. Returns (B, P − 1 + L), 0
        where nothing is predicted.
        """
        levels = net.levels
        b = len(targets)
        z = targets[:, -levels:]
        y = torch.cat([start, net.codes.embed_codes(z[:, :-1])], dim=1)
        y_pad = torch.cat([start_pad, torch.zeros(b, levels - 1, dtype=torch.bool, device=y.device)], dim=1)
        hidden = net.codes.backbone.decode(y, memory, pad, y_pad)  # (B, P − 1 + L, d)
        nll = torch.zeros(targets.shape, device=y.device)
        for level in range(levels):
            cols = torch.arange(level, targets.shape[1], levels, device=y.device)
            logp = torch.log_softmax(net.codes.logits(hidden[:, cols], level).float(), dim=-1)
            tok = targets[:, cols]
            picked = logp.gather(2, tok.clamp(min=0)[..., None]).squeeze(2)
            nll[:, cols] = torch.where(tok >= 0, -picked, torch.zeros_like(picked))
        return nll

    def sft_loss(self, h: Histories, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """L_SFT + λ·L_qual on conversion samples: h their histories, target (B,) the converted items."""
        net, cfg, levels = self.net, self.config, self.net.levels
        states, pad, items = self._encode(net, h)
        z = self.item_codes[target]  # (B, L)
        b = len(target)
        if cfg.prefix == "none":  # w/o RCPM: plain SFT on conversions
            start, start_pad = self._decoder_start(net, b, None, None, None)
            l_sft = self._token_nll(net, states, pad, start, start_pad, z).sum(1).mean()
            return {"loss": l_sft, "sft": l_sft}
        codes, slot_pad, m, _ = self.curriculum(net, h, states, pad, items)
        start, start_pad = self._decoder_start(net, b, codes, slot_pad, m)
        prefix_targets = torch.where(slot_pad[:, :, None], torch.full_like(codes, -1), codes).reshape(b, -1)
        nll = self._token_nll(net, states, pad, start, start_pad, torch.cat([prefix_targets, z], dim=1))
        l_sft = nll.sum(1).mean()  # Eq. 6: every decoder token, prefix and target
        l_curr = nll[:, -levels:].mean(1)  # (B,) mean target-token NLL with the prefix, current θ
        l_qual = quality_loss(self.base_nll(h, z), l_curr, cfg.margin)
        return {"loss": l_sft + cfg.lam * l_qual, "sft": l_sft, "qual": l_qual}

    @torch.no_grad()
    def base_nll(self, h: Histories, z: torch.Tensor) -> torch.Tensor:
        """L_base: (B,) mean target-token NLL without prefix under the frozen θ0 (no gradient)."""
        states, pad, _ = self._encode(self.theta0, h)
        start, start_pad = self._decoder_start(self.theta0, len(z), None, None, None)
        return self._token_nll(self.theta0, states, pad, start, start_pad, z).mean(1)

    # ------------------------------------------------------------------------------- training

    def _loop(
        self, split: Split, user: np.ndarray, end: np.ndarray, loss_fn, samples: int, desc: str, epochs: int,
        patience: int, checkpoint,
    ) -> FitReport:  # fmt: skip
        """One training stage over samples (user, position): loss_fn(histories, target items, behaviors)."""
        cfg, dev = self.config, self.ctx.device
        optimizer = torch.optim.AdamW(self.net.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        salt = 0 if self.stage == "pretrain" else 7  # the two stages shuffle differently

        def loss_of(idx: np.ndarray) -> torch.Tensor:
            h = split.train_windows(user[idx], end[idx], cfg.max_items)
            rows = split.offsets[user[idx]] + end[idx]
            target = torch.as_tensor(split.items[rows], device=dev)
            return loss_fn(h, target, torch.as_tensor(split.behaviors[rows].astype(np.int64), device=dev))

        def run_epoch(epoch: int) -> float:
            seed = self.ctx.epoch_seed(epoch, salt)
            return minibatch_epoch(len(user), cfg.batch_size, seed, samples, optimizer, dev, loss_of)

        validate = lambda: validation_ndcg10(self, split, self.ctx.eval_batch_size)  # noqa: E731
        return train(self.net, optimizer, run_epoch, validate, epochs=epochs, patience=patience,
                     seed=self.ctx.stage_seed(self.stage), checkpoint=checkpoint, desc=desc,
                     progress=self.ctx.progress)  # fmt: skip

    def pretrain_loss(self, h: Histories, target: torch.Tensor, behavior: torch.Tensor) -> torch.Tensor:
        """Eq. 1: NLL of the next interaction's tokens given the history and its behavior's BOS e_b."""
        states, pad, _ = self._encode(self.net, h)
        start = self.net.behavior(behavior)[:, None]
        no_pad = torch.zeros(len(target), 1, dtype=torch.bool, device=start.device)
        return self._token_nll(self.net, states, pad, start, no_pad, self.item_codes[target]).sum(1).mean()

    @classmethod
    def shared_stage(cls, config: RCLRecConfig, seed: int) -> Hashable:
        """θ0's identity within one split, as far as the config and seed decide it (:meth:`theta0_key` adds
        the split and the codes, which random codes change, and the source)."""
        return ("rclrec-theta0", seed, config.random_ids, tuple(getattr(config, f) for f in PRETRAIN_FIELDS))

    def theta0_key(self) -> str:
        """θ0's cache name (:meth:`theta0_name` of this run)."""
        return self.theta0_name(self.config, self.ctx, self.ids.codes)

    @classmethod
    def theta0_name(cls, config: RCLRecConfig, ctx: Context, codes: np.ndarray) -> str:
        """θ0's cache name: everything it is computed from — the split, the seed, the pre-training fields of
        the config, the semantic-ID config and the codes themselves (their fingerprint), and the code that
        trains and selects it (:data:`THETA0_SOURCES`; not their comments or docstrings:
        :func:`~bench.hashing.sources_hash`), so an edit to the backbone or the training loop is never
        served a θ0 trained by the old code."""
        pre = {f: getattr(config, f) for f in PRETRAIN_FIELDS}
        key = config_hash({
            "pretrain": pre,
            "semantic_ids": dataclasses.asdict(ctx.semantic_id_config),
            "codes": fingerprint(codes),
            "source": sources_hash(THETA0_SOURCES),
        })  # fmt: skip
        return f"{ctx.split.fingerprint}-rclrec-theta0-seed{ctx.seed}-{key}"

    @classmethod
    def shared_stage_cached(cls, config: RCLRecConfig, ctx: Context) -> bool:
        """Whether θ0 for this config and ``ctx``'s seed is in ``ctx``'s cache (with the codes this run would
        use: the split's, or their random stand-in)."""
        if ctx.cache_dir is None:
            return False
        ids = ctx.semantic_ids()
        codes = random_like(ids, ctx.seed).codes if config.random_ids else ids.codes
        return (ctx.cache_dir / f"{cls.theta0_name(config, ctx, codes)}.pt").exists()

    def pretrain(self, split: Split) -> FitReport:
        """Stage 1, or θ0 and its training record from the cache. Either way the record (best epoch, curve,
        whether it ended at its cap, seconds) is the one of the run that trained θ0."""
        self.stage = "pretrain"
        if self.ctx.cache_dir is None:
            return self._pretrain(split, None)
        cache = self.ctx.cache_dir / f"{self.theta0_key()}.pt"
        cache.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(cache.with_suffix(".lock")):  # variants in parallel workers: one trains θ0, the others read it
            return self._pretrain(split, cache)

    def _pretrain(self, split: Split, cache: Path | None) -> FitReport:
        cfg = self.config
        if cache is not None and cache.exists():
            try:
                entry = torch.load(cache, map_location=self.ctx.device, weights_only=False)  # our own file, below
            except Exception as err:  # noqa: BLE001 - truncated or foreign: say which file, never guess
                raise BenchError(f"{cache}: cached θ0 is unreadable ({type(err).__name__}); delete the file") from None
            self.net.load_state_dict(entry["weights"])
            report = FitReport(**entry["report"])
            report.extra["theta0"] = "cached"
            return report
        user, end = split.next_item_samples()
        if cache is not None:  # θ0's checkpoint lives next to its cache entry: whichever job needs θ0 next resumes it
            ckpt = cache.with_suffix(".ckpt")
        else:
            ckpt = None if self.ctx.checkpoint is None else self.ctx.checkpoint.with_suffix(".pretrain.ckpt")
        started = time.perf_counter()
        report = self._loop(split, user, end, lambda h, t, b: self.pretrain_loss(h, t, b), cfg.pretrain_samples_per_epoch,
                            "RCLRec pre-train", cfg.pretrain_epochs, cfg.pretrain_patience, ckpt)  # fmt: skip
        report.extra["train_seconds"] = round(time.perf_counter() - started, 3)
        if cache is not None:
            with atomic_path(cache) as tmp:
                torch.save({"weights": self.net.state_dict(), "report": dataclasses.asdict(report)}, tmp)
        report.extra["theta0"] = "trained"
        return report

    def fit(self, split: Split) -> FitReport:
        """Stage 1 (or θ0 from the cache), then stage 2 from θ0. Each stage seeds its own random streams
        (``ctx.stage_seed``), so stage 2 draws the same numbers whether θ0 was trained or read."""
        self._fitting = True
        try:
            return self._fit(split)
        finally:
            self._fitting = False

    def _fit(self, split: Split) -> FitReport:
        cfg = self.config
        pre = self.pretrain(split)
        self.theta0 = copy.deepcopy(self.net).eval()
        for p in self.theta0.parameters():
            p.requires_grad_(False)
        self.stage = "sft"
        user, end = split.next_item_samples(behavior=BUY)  # conversions only
        sft = self._loop(split, user, end, lambda h, t, b: self.sft_loss(h, t)["loss"], 0, "RCLRec SFT",
                         cfg.epochs, cfg.patience, self.ctx.checkpoint)  # fmt: skip
        sft.extra["pretrain"] = dataclasses.asdict(pre)
        sft.extra["sft_samples"] = len(user)
        # θ0's own validation score (decoding from [e_pay] alone): if fine-tuning never beat it, the model
        # reported is worse on validation than the starting point, and the result should say so.
        sft.extra["theta0_valid_ndcg10"] = pre.best_valid_ndcg10
        sft.extra["sft_below_theta0"] = bool(sft.best_valid_ndcg10 < pre.best_valid_ndcg10)
        return sft

    # ------------------------------------------------------------------------------- inference

    def rank(self, histories: Histories, targets: np.ndarray) -> np.ndarray:
        self._targets = targets  # read only by the diagnosis (hit shares, the oracle prefix) at test time
        return super().rank(histories, targets)

    @torch.no_grad()
    def recommend(self, histories: Histories, k: int) -> np.ndarray:
        """RCPM builds the prefix exactly as in training; [e_pay ; G] is forced, then beam search."""
        net = self.net.eval()
        with autocast(self.ctx.device):
            states, pad, items = self._encode(net, histories)
            b = len(histories)
            if self.config.prefix == "none" or self.stage == "pretrain":
                start, start_pad = self._decoder_start(net, b, None, None, None)
            else:
                codes, slot_pad, m, index = self.curriculum(net, histories, states, pad, items)
                if not self._fitting and self._targets is not None and len(self._targets) == b:
                    codes, slot_pad, m = self._test_time_prefix(pad, items, codes, slot_pad, m, index)
                start, start_pad = self._decoder_start(net, b, codes, slot_pad, m)
            out, _ = net.codes.generate(states, pad, start, self.trie, max(self.beam_width, k), k, start_pad=start_pad)
        return out.cpu().numpy()

    def _test_time_prefix(
        self, pad: torch.Tensor, items: torch.Tensor, codes: torch.Tensor, slot_pad: torch.Tensor, m: torch.Tensor,
        index: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # fmt: skip
        """Count how often the target is in the selected prefix and in the last-k window, and apply the
        diagnosis's ``inference_prefix`` (``same`` changes nothing)."""
        target = torch.as_tensor(self._targets, device=items.device)
        recent_index, recent_pad = recent_k(pad, self.config.k)
        chosen = items.gather(1, index).masked_fill(slot_pad, -1)
        window = items.gather(1, recent_index).masked_fill(recent_pad, -1)
        self._hits["prefix"] += int((chosen == target[:, None]).any(1).sum())
        self._hits["recent_k"] += int((window == target[:, None]).any(1).sum())
        self._hits["n"] += len(target)
        if self.config.inference_prefix == "recent":
            return self.item_codes[window.clamp(min=0)], recent_pad, torch.ones_like(m)
        if self.config.inference_prefix == "oracle":
            codes = codes.clone()
            codes[:, -1] = self.item_codes[target]
            slot_pad = slot_pad.clone()
            slot_pad[:, -1] = False
            return codes, slot_pad, torch.ones_like(m)
        return codes, slot_pad, m

    def generation_stats(self, ranks: np.ndarray) -> dict[str, Any]:
        """The generic statistics, plus the share of test targets inside the selected prefix and inside the
        last-k window (the selection question of the diagnosis)."""
        out = super().generation_stats(ranks)
        if self._hits["n"]:
            out["prefix_hit_share"] = self._hits["prefix"] / self._hits["n"]
            out["recent_k_hit_share"] = self._hits["recent_k"] / self._hits["n"]
        self._hits = {"prefix": 0, "recent_k": 0, "n": 0}
        return out
