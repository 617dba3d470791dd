"""A pre-norm Transformer encoder-decoder with a decoder KV cache, shared by TIGER, MBGen and RCLRec.

Models pass in embeddings (their own token tables) and read out hidden states; the backbone owns only
positions, attention and feed-forward layers. Positions are T5's relative position bias (Raffel et al. 2020,
§2.1): a learned scalar per head and bucket of the query-key distance, added to the attention logits of
every self-attention layer (one table per stack; none in cross-attention), so a token's view of its
neighbours does not depend on where it stands. A decoder target behind a forced prefix of any length is
then predicted exactly as it was learned behind BOS alone. The cache holds, per decoder layer, the cross-attention keys
and values of the encoder memory (computed once per batch, not once per beam or step) and the growing
self-attention keys and values, so one decoding step costs one token, not the whole prefix.

MBGen's two additions are options of the same layers, off by default: position-routed feed-forward
experts (the expert of a token is given, not learned: no router) and behavior injection (the feed-forward
input of the first layers is [x ; e_b]). Both read a per-token :class:`Routing` passed with the input.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class BackboneConfig:
    d_model: int = 256
    n_heads: int = 8
    encoder_layers: int = 4
    decoder_layers: int = 2
    d_ff: int = 1024
    dropout: float = 0.1
    position_buckets: int = 32
    """Relative-position buckets per direction set (T5: 32)."""
    position_max_distance: int = 128
    """Distances from here on share the last bucket (T5: 128)."""
    decoder_experts: int = 1
    """Feed-forward experts per decoder layer; a token's expert is ``Routing.expert`` (1 = dense). The
    encoder is always dense (MBGen's default)."""
    inject_layers: int = 0
    """The first this many layers of each stack get [x ; e_b] as feed-forward input (MBGen)."""
    behavior_vocab: int = 0
    """Rows of each injected layer's behavior table (``Routing.behavior`` indexes it; 0 = no behavior)."""
    behavior_dim: int = 64

    @classmethod
    def of(cls, model_config: object) -> BackboneConfig:
        """The backbone part of a model's config (fields of the same names)."""
        shared = ("d_model", "n_heads", "encoder_layers", "decoder_layers", "d_ff", "dropout")
        return cls(**{f: getattr(model_config, f) for f in shared})


def position_bucket(distance: torch.Tensor, bidirectional: bool, buckets: int, max_distance: int) -> torch.Tensor:
    """T5's bucket of each query-minus-key distance (int64, any shape → same shape, in [0, buckets)).

    Half of the buckets (per direction) hold the distances 0, 1, … exactly; the rest cover larger distances
    logarithmically up to ``max_distance``, beyond which one bucket holds them all. Bidirectional (encoder):
    keys after the query get their own half of the buckets; causal (decoder): only keys at or before the
    query are ever attended, so every bucket goes to the past.
    """
    offset = torch.zeros_like(distance)
    if bidirectional:
        buckets //= 2
        offset = (distance < 0).long() * buckets
        distance = distance.abs()
    else:
        distance = distance.clamp(min=0)
    exact = buckets // 2
    ratio = torch.log(distance.float().clamp(min=1) / exact) / math.log(max_distance / exact)
    far = (exact + (ratio * (buckets - exact)).long()).clamp(max=buckets - 1)
    return offset + torch.where(distance < exact, distance, far)


class RelativePositionBias(nn.Module):
    """(…, H, T, S) additive attention bias from query and key positions: a learned scalar per head and
    :func:`position_bucket` of their distance."""

    def __init__(self, heads: int, buckets: int, max_distance: int, bidirectional: bool) -> None:
        super().__init__()
        self.bidirectional, self.buckets, self.max_distance = bidirectional, buckets, max_distance
        self.table = nn.Embedding(buckets, heads)

    def forward(self, query_pos: torch.Tensor, key_pos: torch.Tensor) -> torch.Tensor:
        """query_pos (R, T), key_pos (R, S) int64 (R may be 1, broadcast) → (R, H, T, S) float bias."""
        bucket = position_bucket(query_pos[:, :, None] - key_pos[:, None, :], self.bidirectional, self.buckets, self.max_distance)
        return self.table(bucket).permute(0, 3, 1, 2)


def with_bias(mask: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """A boolean attention mask (True = attend) and a float bias → one additive mask for SDPA."""
    return bias.masked_fill(~mask, float("-inf"))


class Attention(nn.Module):
    def __init__(self, d: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))

    def split(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, d) → (B, H, T, d / H)"""
        b, t, d = x.shape
        return x.view(b, t, self.heads, d // self.heads).transpose(1, 2)

    def project_kv(self, source: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.split(self.k(source)), self.split(self.v(source))

    def attend(self, x: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """x (B, T, d) queries over k, v (B, H, S, d/H); mask broadcastable to (B, H, T, S): bool (True =
        attend) or float (added to the logits, -inf = never)."""
        q = self.split(self.q(x))
        if mask is not None and mask.is_floating_point():
            mask = mask.to(q.dtype)  # under autocast q is bf16, and SDPA wants one dtype
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0)
        b, h, t, dh = out.shape
        return self.o(out.transpose(1, 2).reshape(b, t, h * dh))


class FeedForward(nn.Sequential):
    def __init__(self, d: int, d_ff: int, dropout: float, d_in: int | None = None) -> None:
        super().__init__(nn.Linear(d_in or d, d_ff), nn.GELU(), nn.Dropout(dropout), nn.Linear(d_ff, d))


@dataclass(frozen=True)
class Routing:
    """Per-token inputs of routed or behavior-injected feed-forward layers.

    Attributes:
        expert: (B, T) int64 expert of each token, in ``[0, experts)``.
        behavior: (B, T) int64 row of the behavior table, 0 = no behavior.
    """

    expert: torch.Tensor
    behavior: torch.Tensor


class RoutedFeedForward(nn.Module):
    """y_t = FFN^(p_t)([x_t ; e_{b_t}]): one of ``experts`` feed-forward blocks per token, chosen by the
    given route p_t (deterministic, so there is no router, capacity or balancing loss); with ``behavior_vocab``
    the input is the token concatenated with its behavior embedding."""

    def __init__(self, d: int, d_ff: int, dropout: float, experts: int, behavior_vocab: int, behavior_dim: int) -> None:
        super().__init__()
        self.behavior = nn.Embedding(behavior_vocab, behavior_dim) if behavior_vocab else None
        d_in = d + (behavior_dim if behavior_vocab else 0)
        self.experts = nn.ModuleList(FeedForward(d, d_ff, dropout, d_in) for _ in range(experts))

    def forward(self, x: torch.Tensor, routing: Routing) -> torch.Tensor:
        """x (B, T, d), routing over (B, T) → (B, T, d)."""
        if self.behavior is not None:
            e = self.behavior(routing.behavior).to(x.dtype)
            x = torch.cat([x, e], dim=-1)
        if len(self.experts) == 1:
            return self.experts[0](x)
        flat, route = x.reshape(-1, x.shape[-1]), routing.expert.reshape(-1)
        parts = [(idx, ffn(flat[idx])) for e, ffn in enumerate(self.experts) if len(idx := torch.nonzero(route == e).squeeze(1))]
        out = flat.new_empty(len(flat), parts[0][1].shape[-1], dtype=parts[0][1].dtype)
        for idx, y in parts:
            out.index_copy_(0, idx, y)
        return out.reshape(*x.shape[:-1], -1)


def feed_forward(cfg: BackboneConfig, experts: int, inject: bool) -> nn.Module:
    """The plain block where nothing is routed or injected (TIGER, RCLRec), else the routed one."""
    if experts == 1 and not inject:
        return FeedForward(cfg.d_model, cfg.d_ff, cfg.dropout)
    return RoutedFeedForward(cfg.d_model, cfg.d_ff, cfg.dropout, experts, cfg.behavior_vocab if inject else 0, cfg.behavior_dim)


def apply_ff(ff: nn.Module, x: torch.Tensor, routing: Routing | None) -> torch.Tensor:
    if isinstance(ff, RoutedFeedForward):
        if routing is None:
            raise ValueError("this backbone routes its feed-forward layers: pass a Routing")
        return ff(x, routing)
    return ff(x)


class EncoderLayer(nn.Module):
    def __init__(self, cfg: BackboneConfig, inject: bool = False) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(cfg.d_model), nn.LayerNorm(cfg.d_model)
        self.attn = Attention(cfg.d_model, cfg.n_heads, cfg.dropout)
        self.ff = feed_forward(cfg, 1, inject)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, routing: Routing | None = None) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.drop(self.attn.attend(h, *self.attn.project_kv(h), mask))
        return x + self.drop(apply_ff(self.ff, self.norm2(x), routing))


class DecoderLayer(nn.Module):
    def __init__(self, cfg: BackboneConfig, inject: bool = False) -> None:
        super().__init__()
        self.norm1, self.norm2, self.norm3 = (nn.LayerNorm(cfg.d_model) for _ in range(3))
        self.self_attn = Attention(cfg.d_model, cfg.n_heads, cfg.dropout)
        self.cross_attn = Attention(cfg.d_model, cfg.n_heads, cfg.dropout)
        self.ff = feed_forward(cfg, cfg.decoder_experts, inject)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(
        self,
        y: torch.Tensor,
        self_kv: tuple[torch.Tensor, torch.Tensor],
        self_mask: torch.Tensor | None,
        cross_kv: tuple[torch.Tensor, torch.Tensor],
        cross_mask: torch.Tensor,
        width: int = 1,
        routing: Routing | None = None,
    ) -> torch.Tensor:
        """``width`` consecutive rows of y share one memory row (beams of one input): they are folded into
        the query length, so the memory is attended without being copied per beam."""
        y = y + self.drop(self.self_attn.attend(self.norm1(y), *self_kv, self_mask))
        r, t, d = y.shape
        z = self.norm2(y).reshape(r // width, width * t, d)
        y = y + self.drop(self.cross_attn.attend(z, *cross_kv, cross_mask).reshape(r, t, d))
        return y + self.drop(apply_ff(self.ff, self.norm3(y), routing))


@dataclass
class DecoderCache:
    """Per-layer keys/values. ``cross`` is (B, H, S, dh) per layer for the B distinct inputs, projected
    once; the B·W decoding rows are grouped by input (rows b·W … b·W + W − 1 decode input b)."""

    cross: list[tuple[torch.Tensor, torch.Tensor]]
    cross_mask: torch.Tensor  # (B, 1, 1, S) bool
    width: int = 1
    self_kv: list[tuple[torch.Tensor, torch.Tensor] | None] = field(default_factory=list)
    length: int = 0
    self_pad: torch.Tensor | None = None  # (R, length) bool, True on padded decoder inputs
    real: torch.Tensor | None = None  # (R,) real (unpadded) inputs so far: the next one's position
    key_pos: torch.Tensor | None = None  # (R or 1, length) int64 position of every cached key

    def select(self, index: torch.Tensor, width: int) -> None:
        """Keep decoding rows ``index`` (B·width,), which must stay grouped by input (beam reordering
        within an input, or expansion of each input to ``width`` beams)."""
        self.width = width
        self.self_kv = [None if kv is None else (kv[0][index], kv[1][index]) for kv in self.self_kv]
        if self.self_pad is not None:
            self.self_pad, self.real = self.self_pad[index], self.real[index]
        if self.key_pos is not None and len(self.key_pos) > 1:
            self.key_pos = self.key_pos[index]


class EncoderDecoder(nn.Module):
    """Pre-norm encoder-decoder over embeddings with relative position bias in both self-attention stacks.

    Decoder positions count real inputs only (a padded slot of a forced prefix takes no position), so
    padding shifts nothing; and since only distances matter, neither does the length of a forced prefix
    for the tokens after it beyond what they attend to."""

    def __init__(self, cfg: BackboneConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.enc_bias = RelativePositionBias(cfg.n_heads, cfg.position_buckets, cfg.position_max_distance, True)
        self.dec_bias = RelativePositionBias(cfg.n_heads, cfg.position_buckets, cfg.position_max_distance, False)
        self.encoder = nn.ModuleList(EncoderLayer(cfg, i < cfg.inject_layers) for i in range(cfg.encoder_layers))
        self.decoder = nn.ModuleList(DecoderLayer(cfg, i < cfg.inject_layers) for i in range(cfg.decoder_layers))
        self.enc_norm, self.dec_norm = nn.LayerNorm(cfg.d_model), nn.LayerNorm(cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)

    def encode(self, x: torch.Tensor, pad: torch.Tensor, routing: Routing | None = None) -> torch.Tensor:
        """x (B, S, d) embeddings, pad (B, S) bool True on padding → memory (B, S, d)."""
        s = x.shape[1]
        pos = torch.arange(s, device=x.device)[None]
        mask = with_bias(~pad[:, None, None, :], self.enc_bias(pos, pos))
        h = self.drop(x)
        for layer in self.encoder:
            h = layer(h, mask, routing)
        return self.enc_norm(h)

    def _self_mask(self, t: int, start: int, y_pad: torch.Tensor | None, device: torch.device) -> torch.Tensor:
        """Causal mask of t new queries over start + t keys, without padded keys; each query always sees
        itself, so a padded row attends to something (its output is never read)."""
        causal = torch.ones(t, start + t, dtype=torch.bool, device=device).tril(diagonal=start)
        if y_pad is None:
            return causal
        itself = torch.zeros_like(causal)
        itself[:, start:] = torch.eye(t, dtype=torch.bool, device=device)
        return (causal & ~y_pad[:, None, None, :]) | itself

    @staticmethod
    def _positions(y_pad: torch.Tensor) -> torch.Tensor:
        """(R, t) int64: a token's position is the number of real tokens before it."""
        return (torch.cumsum(~y_pad, dim=1) - 1).clamp(min=0)

    def decode(
        self,
        y: torch.Tensor,
        memory: torch.Tensor,
        pad: torch.Tensor,
        y_pad: torch.Tensor | None = None,
        routing: Routing | None = None,
    ) -> torch.Tensor:
        """Teacher forcing: y (B, T, d) decoder input embeddings → (B, T, d) hidden states (causal).
        ``y_pad`` (B, T) marks padded inputs (rows with a shorter forced prefix); they are invisible."""
        t = y.shape[1]
        pos = torch.arange(t, device=y.device)[None] if y_pad is None else self._positions(y_pad)
        causal = with_bias(self._self_mask(t, 0, y_pad, y.device), self.dec_bias(pos, pos))
        cross_mask = ~pad[:, None, None, :]
        h = self.drop(y)
        for layer in self.decoder:
            n = layer.norm1(h)
            h = layer(h, layer.self_attn.project_kv(n), causal, layer.cross_attn.project_kv(memory), cross_mask, 1, routing)
        return self.dec_norm(h)

    def start_cache(self, memory: torch.Tensor, pad: torch.Tensor) -> DecoderCache:
        """Project the memory once for every layer's cross-attention."""
        cross = [layer.cross_attn.project_kv(memory) for layer in self.decoder]
        return DecoderCache(cross, ~pad[:, None, None, :], 1, [None] * len(self.decoder), 0)

    def decode_step(
        self, y: torch.Tensor, cache: DecoderCache, y_pad: torch.Tensor | None = None, routing: Routing | None = None
    ) -> torch.Tensor:
        """y (B·W, T, d) the next T decoder inputs of each row (T > 1 for a forced prefix) → (B·W, T, d).
        ``y_pad`` (B·W, T) marks padded inputs, only in the first call; ``routing`` covers the T new
        inputs. Appends to the cache; the position bias is computed for the new query rows only."""
        t = y.shape[1]
        start = cache.length
        if y_pad is not None:
            positions = self._positions(y_pad)
            cache.self_pad, cache.real = y_pad, (~y_pad).sum(1)
        elif cache.self_pad is not None:
            positions = cache.real[:, None] + torch.arange(t, device=y.device)
            cache.self_pad = torch.cat([cache.self_pad, cache.self_pad.new_zeros(len(y), t)], dim=1)
            cache.real = cache.real + t
        else:
            positions = (start + torch.arange(t, device=y.device))[None]
        cache.key_pos = positions if cache.key_pos is None else _cat_positions(cache.key_pos, positions)
        h = self.drop(y)
        total = start + t
        mask = with_bias(self._self_mask(t, start, cache.self_pad, y.device), self.dec_bias(positions, cache.key_pos))
        for i, layer in enumerate(self.decoder):
            k_new, v_new = layer.self_attn.project_kv(layer.norm1(h))
            past = cache.self_kv[i]
            k = k_new if past is None else torch.cat([past[0], k_new], dim=2)
            v = v_new if past is None else torch.cat([past[1], v_new], dim=2)
            cache.self_kv[i] = (k, v)
            h = layer(h, (k, v), mask, cache.cross[i], cache.cross_mask, cache.width, routing)
        cache.length = total
        return self.dec_norm(h)


def _cat_positions(old: torch.Tensor, new: torch.Tensor) -> torch.Tensor:
    """Append key positions, broadcasting a shared (1, ·) row to per-row positions when needed."""
    rows = max(len(old), len(new))
    return torch.cat([old.expand(rows, -1), new.expand(rows, -1)], dim=1)
