"""PBAT (Su et al., MM 2023, "Personalized Behavior-Aware Transformer for Multi-Behavior Sequential
Recommendation"), after the public code TiliaceaeSU/PBAT (../shared/notes/baselines/pbat.md).

Every entity is a diagonal Gaussian (mean μ, variance Σ). A user's personalized behavior patterns G^k fuse
the user's Gaussian with each behavior's; the Wasserstein distances between the patterns weight learned
behavior-pair relations R^{rc}. Attention fuses each query/key with the relation of its behavior pair and
with its position (three-way Gaussian product) and scores pairs by −W₂²; behavior-specific feed-forward
layers update the item stream; the output of every slot is fused with the pattern of its behavior. Items
are scored by −W₂² between the output and the item's Gaussian: the closer, the likelier (the public
code's head returns +W₂² as the logit; see ``head_sign``).
Training: Cloze, every event masked with probability ``mask_prob`` (its behavior kept), full softmax at
the masked slots. Ranking: the history's last T − 1 events, then MASK with behavior buy.

Notation: B batch, T slots (left-padded, newest last), d width, h heads, k = d / h, N items.
Item ids are 1..N (0 pad, N + 1 MASK); behavior ids 1..4 (0 pad).

Adaptations (README): the head's sign (−W₂², as every other distance in PBAT and its predecessors;
with the public code's +W₂² a toy "next = last + 1" sequence reaches Recall@10 0.28 after 40 epochs
against 1.0 with −W₂², chance 0.33); scores of the whole catalogue instead of 99 sampled negatives;
validation on a separate target; everything else, including the public code's quirks the card lists
(ELU applied twice to pattern variances, no residual around the feed-forward layers, the shared LayerNorm
of both streams), as upstream.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.data.log import BEHAVIORS, BUY
from bench.data.split import Histories, Split, window_ends
from bench.recommender import Context, FitReport, ScoringModel
from bench.training import fit_model, minibatch_epoch

NB = len(BEHAVIORS)
EPS = 1e-24
PRECISION_CAP = 1e-6


@dataclass(frozen=True)
class PBATConfig:
    d_model: int = 16
    heads: int = 2
    layers: int = 2
    dropout: float = 0.2
    mask_prob: float = 0.2
    max_len: int = 50
    random_window_prob: float = 0.2
    """Probability of training on a random contiguous window instead of the most recent T events."""
    learning_rate: float = 1e-3
    weight_decay: float = 1e-6
    batch_size: int = 128
    epochs: int = 1000
    patience: int = 10
    head_sign: float = -1.0
    """Logit = head_sign · W₂²(output, item): −1 ranks the closest items first (the paper's intent),
    +1 is the public code's head."""


# ------------------------------------------------------------------------------- Gaussian algebra


def sagp(m1: torch.Tensor, s1: torch.Tensor, m2: torch.Tensor, s2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Fusion of two Gaussians, elementwise: μ = (Σ₁μ₂ + Σ₂μ₁)/(Σ₁ + Σ₂), Σ = 2Σ₁Σ₂/(Σ₁ + Σ₂)."""
    total = s1 + s2
    return (s1 * m2 + s2 * m1) / total, (2 * s1 * s2 / total).clamp(min=EPS)


def tri_sagp(g1: tuple[torch.Tensor, torch.Tensor], g2: tuple[torch.Tensor, torch.Tensor], g3: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Product of three Gaussians: Σ = 1/(1/Σ₁ + 1/Σ₂ + 1/Σ₃), μ = Σ(μ₁/Σ₁ + μ₂/Σ₂ + μ₃/Σ₃).

    Variances are clamped at 1e-6 first: ELU(x) + 1 rounds to exactly 0 in float32 for x < −17, which
    the relation variances reach within a few steps (their logits are scaled by Wasserstein distances),
    and a 1/Σ² gradient past the float range turns the row into NaN. The public code clamps at 1e-24,
    which keeps the forward pass finite but not the gradient; this clamp touches only variances below
    1e-6."""
    (m1, s1), (m2, s2), (m3, s3) = ((m, v.clamp(min=PRECISION_CAP)) for m, v in (g1, g2, g3))
    s = 1.0 / (1.0 / s1 + 1.0 / s2 + 1.0 / s3)
    return s * (m1 / s1 + m2 / s2 + m3 / s3), s


def wasserstein(m1: torch.Tensor, s1: torch.Tensor, m2: torch.Tensor, s2: torch.Tensor) -> torch.Tensor:
    """Squared 2-Wasserstein distance of diagonal Gaussians over the last axis:
    ‖μ₁ − μ₂‖² + ΣΣ₁ + ΣΣ₂ − 2⟨√Σ₁, √Σ₂⟩ (square roots of variances clamped at 1e-24, sums raw, as upstream)."""
    root = (s1.clamp(min=EPS).sqrt() * s2.clamp(min=EPS).sqrt()).sum(-1)
    return ((m1 - m2) ** 2).sum(-1) + s1.sum(-1) + s2.sum(-1) - 2 * root


def wasserstein_all(m: torch.Tensor, s: torch.Tensor, em: torch.Tensor, es: torch.Tensor) -> torch.Tensor:
    """(B, d) Gaussians against (N, d) Gaussians → (B, N) squared distances, as one matrix product each."""
    mm = (m * m).sum(-1, keepdim=True) + (em * em).sum(-1) - 2 * m @ em.T
    root = s.clamp(min=EPS).sqrt() @ es.clamp(min=EPS).sqrt().T
    return mm + s.sum(-1, keepdim=True) + es.sum(-1) - 2 * root


class Block(nn.Module):
    """An embedding table → LayerNorm → dropout → ELU (row 0 zero, N(0, 0.02) init)."""

    def __init__(self, rows: int, d: int, dropout: float) -> None:
        super().__init__()
        self.table = nn.Embedding(rows, d, padding_idx=0)
        nn.init.normal_(self.table.weight, std=0.02)
        with torch.no_grad():
            self.table.weight[0].zero_()
        self.norm = nn.LayerNorm(d, eps=1e-12)
        self.drop = nn.Dropout(dropout)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return F.elu(self.drop(self.norm(self.table(ids))))


class GaussianBlock(nn.Module):
    """Mean block and variance block; variance = ELU(·) + 1 > 0."""

    def __init__(self, rows: int, d: int, dropout: float) -> None:
        super().__init__()
        self.mean, self.var = Block(rows, d, dropout), Block(rows, d, dropout)

    def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.mean(ids), self.var(ids) + 1


# ------------------------------------------------------------------------------- layers


class BehaviorAwareAttention(nn.Module):
    """One PBAT layer: Wasserstein attention over relation- and position-fused Gaussians, then the
    behavior-specific feed-forward layers."""

    def __init__(self, cfg: PBATConfig) -> None:
        super().__init__()
        d, self.h, self.k = cfg.d_model, cfg.heads, cfg.d_model // cfg.heads
        linear = lambda: nn.Linear(d, 3 * d, bias=False)  # q, k, v for all heads  # noqa: E731
        self.x_mu, self.x_s, self.b_mu, self.b_s = linear(), linear(), linear(), linear()
        for proj in (self.x_mu, self.x_s, self.b_mu, self.b_s):
            nn.init.normal_(proj.weight, std=0.02)
        self.wq_r, self.wq_p, self.wk_r, self.wk_p = (nn.Linear(self.k, self.k) for _ in range(4))
        self.out_mu, self.out_s = nn.Linear(d, d), nn.Linear(d, d)
        self.norm = nn.LayerNorm(d, eps=1e-12)  # shared by both streams, as upstream
        self.drop = nn.Dropout(cfg.dropout)
        self.ffn = nn.ModuleList(nn.Sequential(nn.Linear(d, 4 * d), nn.ELU(), nn.Dropout(cfg.dropout), nn.Linear(4 * d, d), nn.LayerNorm(d, eps=1e-12))
                                 for _ in range(NB))  # fmt: skip
        for ffn in self.ffn:
            for layer in (ffn[0], ffn[3]):
                nn.init.normal_(layer.weight, std=0.02)
                nn.init.zeros_(layer.bias)

    def heads(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, 3d) → three (B, h, T, k)."""
        b, t, _ = x.shape
        return x.view(b, t, 3, self.h, self.k).permute(2, 0, 3, 1, 4).unbind(0)

    def forward(
        self,
        x: tuple[torch.Tensor, torch.Tensor],
        beh: tuple[torch.Tensor, torch.Tensor],
        rel: tuple[torch.Tensor, torch.Tensor],
        pos: tuple[torch.Tensor, torch.Tensor],
        behaviors: torch.Tensor,
        real: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """x, beh: (B, T, d) Gaussians of the items and behaviors; rel: (B, T, T, d) relation Gaussian of
        each slot pair's behaviors; pos: (T, d); behaviors (B, T) ids; real (B, T) bool → new x."""
        b, t, d = x[0].shape
        q_mu, k_mu, v_mu = self.heads(self.x_mu(x[0]) + self.b_mu(beh[0]))
        q_s, k_s, v_s = (F.elu(z) + 1 for z in self.heads(self.x_s(x[1]) + self.b_s(beh[1])))
        split = lambda r: r.view(b, t, t, self.h, self.k).permute(0, 3, 1, 2, 4)  # (B, h, T, T, k)  # noqa: E731
        r_mu, r_s = split(rel[0]), split(rel[1])
        p_mu, p_s = pos[0].view(t, self.h, self.k).transpose(0, 1), pos[1].view(t, self.h, self.k).transpose(0, 1)
        # Query i of pair (i, j): q_i ⊗ relation(b_i, b_j) ⊗ position i; key j likewise with position j.
        query = tri_sagp((q_mu[:, :, :, None], q_s[:, :, :, None]), (self.wq_r(r_mu), r_s),
                         (self.wq_p(p_mu)[None, :, :, None], p_s[None, :, :, None]))  # fmt: skip
        key = tri_sagp((k_mu[:, :, None], k_s[:, :, None]), (self.wk_r(r_mu), r_s),
                       (self.wk_p(p_mu)[None, :, None], p_s[None, :, None]))  # fmt: skip
        scores = -wasserstein(*query, *key) / self.k**0.5  # (B, h, T, T)
        pair = real[:, None, :, None] & real[:, None, None, :]
        attn = self.drop(torch.softmax(scores.masked_fill(~pair, -1e30), dim=-1))
        merge = lambda z: z.transpose(1, 2).reshape(b, t, d)  # noqa: E731
        h_mu = self.norm(self.drop(self.out_mu(merge(attn @ v_mu))) + x[0])
        h_s = self.norm(self.drop(self.out_s(merge((attn * attn) @ v_s))) + x[1])
        return self.behavior_ffn(h_mu, behaviors), F.elu(self.behavior_ffn(h_s, behaviors)) + 1

    def behavior_ffn(self, h: torch.Tensor, behaviors: torch.Tensor) -> torch.Tensor:
        """The feed-forward of each slot's behavior (no residual, as upstream); 0 on padding."""
        out = torch.zeros_like(h)
        for i, ffn in enumerate(self.ffn):
            sel = behaviors == i + 1
            if sel.any():
                out[sel] = ffn(h[sel]).to(out.dtype)
        return out


class PBATNet(nn.Module):
    def __init__(self, cfg: PBATConfig, n_items: int, n_users: int) -> None:
        super().__init__()
        d = cfg.d_model
        self.cfg, self.n_items = cfg, n_items
        self.items = GaussianBlock(n_items + 2, d, cfg.dropout)  # 0 pad, 1..N, N + 1 MASK
        self.behaviors = GaussianBlock(NB + 1, d, cfg.dropout)
        self.users = GaussianBlock(n_users + 1, d, cfg.dropout)
        # Relation of behaviors (r, c): row NB·(r − 1) + c of two blocks (mean, variance).
        self.rel_mu, self.rel_s = Block(NB * NB + 1, d, cfg.dropout), Block(NB * NB + 1, d, cfg.dropout)
        self.pos_mu, self.pos_s = nn.Parameter(torch.randn(cfg.max_len, d) * 0.02), nn.Parameter(torch.randn(cfg.max_len, d) * 0.02)
        self.w_ub, self.w_pub, self.head = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.layers = nn.ModuleList(BehaviorAwareAttention(cfg) for _ in range(cfg.layers))

    def patterns(self, users: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B,) user ids → personalized behavior patterns G (B, NB + 1, d), pad pattern included."""
        u_mu, u_s = self.users(users)
        k = torch.arange(NB + 1, device=users.device)
        b_mu, b_s = self.behaviors.mean(k), F.elu(self.behaviors.var(k)) + 1  # ELU twice, as upstream
        return sagp(u_mu[:, None], u_s[:, None], self.w_ub(b_mu)[None], b_s[None])

    def relations_of(self, g: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Behavior collaboration: w_rc = −W₂²(G^r, G^c) scales the learned relation of (r, c) → mean and
        variance (B, NB + 1, NB + 1, d); pairs with padding get mean 0, variance 1."""
        w = -wasserstein(g[0][:, :, None], g[1][:, :, None], g[0][:, None], g[1][:, None])  # (B, 5, 5)
        r = torch.arange(1, NB + 1, device=w.device)
        rows = (NB * (r[:, None] - 1) + r[None]).flatten()  # (16,)
        inner = w[:, 1:, 1:].reshape(len(w), -1, 1)  # (B, 16, 1)
        mu_rows, s_rows = self.rel_mu(rows), self.rel_s(rows)  # (16, d)
        b, d = len(w), mu_rows.shape[-1]
        mu = w.new_zeros(b, NB + 1, NB + 1, d)
        s = w.new_ones(b, NB + 1, NB + 1, d)
        mu[:, 1:, 1:] = (inner * mu_rows).view(b, NB, NB, d)
        s[:, 1:, 1:] = (F.elu(inner * s_rows) + 1).view(b, NB, NB, d)
        return mu, s

    def forward(self, items: torch.Tensor, behaviors: torch.Tensor, users: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """items (B, T) ids (0 pad, N + 1 MASK), behaviors (B, T) ids, users (B,) ids → output Gaussians
        (B, T, d) after the head."""
        b, t = items.shape
        g = self.patterns(users)
        rel_mu, rel_s = self.relations_of(g)
        pair = (behaviors[:, :, None] * (NB + 1) + behaviors[:, None, :]).view(b, t * t)
        gather = lambda r: r.view(b, (NB + 1) ** 2, -1).gather(1, pair[..., None].expand(-1, -1, r.shape[-1])).view(b, t, t, -1)  # noqa: E731
        rel = (gather(rel_mu), gather(rel_s))
        pos = (self.pos_mu[-t:], self.pos_s[-t:] + 1)
        beh = self.behaviors(behaviors)
        x = self.items(items)
        real = items > 0
        for layer in self.layers:
            x = layer(x, beh, rel, pos, behaviors, real)
        g_t = (g[0].gather(1, behaviors[..., None].expand(-1, -1, g[0].shape[-1])),
               g[1].gather(1, behaviors[..., None].expand(-1, -1, g[1].shape[-1])))  # fmt: skip
        o_mu, o_s = sagp(x[0], x[1], self.w_pub(g_t[0]), g_t[1])
        return F.elu(self.head(o_mu)), F.elu(self.head(o_s))

    def logits(self, o_mu: torch.Tensor, o_s: torch.Tensor) -> torch.Tensor:
        """(R, d) output Gaussians → (R, N + 1) logits ±W₂²(o, e_v) over v = 0 (pad) … N, from the raw item
        tables (variance ELU + 1)."""
        em = self.items.mean.table.weight[: self.n_items + 1]
        es = F.elu(self.items.var.table.weight[: self.n_items + 1]) + 1
        return self.cfg.head_sign * wasserstein_all(o_mu.float(), o_s.float(), em.float(), es.float())


class PBAT(ScoringModel):
    Config = PBATConfig

    def __init__(self, config: PBATConfig, ctx: Context) -> None:
        super().__init__(config, ctx)
        self.net = PBATNet(config, ctx.split.n_items, ctx.split.n_users).to(ctx.device)

    def _tensors(self, w: Histories) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        dev = self.ctx.device
        return (torch.as_tensor(w.items + 1, device=dev), torch.as_tensor(w.behaviors + 1, device=dev),
                torch.as_tensor(w.users + 1, device=dev))  # fmt: skip

    def loss(self, w: Histories, generator: torch.Generator) -> torch.Tensor:
        """Cloze: mask each real event with probability ``mask_prob`` (behavior kept); full-catalogue CE at
        the masked slots."""
        items, behaviors, users = self._tensors(w)
        masked = (torch.rand(items.shape, generator=generator) < self.config.mask_prob).to(items.device) & (items > 0)
        if not masked.any():  # keep at least one target per batch
            masked[:, -1] = items[:, -1] > 0
        inputs = torch.where(masked, torch.full_like(items, self.net.n_items + 1), items)
        o_mu, o_s = self.net(inputs, behaviors, users)
        logits = self.net.logits(o_mu[masked], o_s[masked])
        return F.cross_entropy(logits, items[masked])

    def fit(self, split: Split) -> FitReport:
        cfg, dev = self.config, self.ctx.device
        users, lengths = split.train_sequences()
        optimizer = torch.optim.Adam(self.net.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        state: dict = {}

        def loss_of(idx: np.ndarray) -> torch.Tensor:
            # The last T events, or with probability 0.2 (when longer) a random contiguous T-window.
            ends = window_ends(lengths[idx], cfg.max_len, cfg.random_window_prob, state["rng"])
            return self.loss(split.train_windows(users[idx], ends, cfg.max_len), state["gen"])

        def run_epoch(epoch: int) -> float:
            seed = self.ctx.epoch_seed(epoch)
            state["rng"], state["gen"] = np.random.default_rng(seed), torch.Generator().manual_seed(seed)
            return minibatch_epoch(len(users), cfg.batch_size, seed, 0, optimizer, dev, loss_of)

        return fit_model(self, self.net, optimizer, run_epoch, split, "PBAT")

    @torch.no_grad()
    def score(self, histories: Histories) -> torch.Tensor:
        """The last T − 1 history events, then MASK with behavior buy."""
        self.net.eval()
        items, behaviors, users = self._tensors(histories.last(self.config.max_len - 1))
        items = torch.cat([items, torch.full_like(items[:, :1], self.net.n_items + 1)], dim=1)
        behaviors = torch.cat([behaviors, torch.full_like(behaviors[:, :1], BUY + 1)], dim=1)
        o_mu, o_s = self.net(items, behaviors, users)
        return self.net.logits(o_mu[:, -1], o_s[:, -1])[:, 1:]
