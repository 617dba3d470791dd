"""Semantic IDs shared by every generative model: item → (c1, c2, c3, d) token tuple, fitted once per split.

Item vectors (training part of the split only):

* collaborative: truncated SVD of the item co-occurrence matrix of training histories (pairs of items at
  most ``window`` interactions apart, log(1 + count) weighted), scaled by √σ;
* side features (category, brand, seller, … when the log has them): each value gets a fixed random
  Gaussian embedding, so items sharing a category share that part of their vector. Items never seen in
  training still get an ID from their features.

Each block is L2-normalised, then 3 levels of residual k-means (SciPy's ``kmeans2`` with k-means++ init)
assign codes; the 4th token enumerates items that share the first three, so every item has a unique tuple.
Its range grows to the largest collision group instead of overflowing (no two items are ever merged).
A level that uses too few of its codes is a collapsed codebook and fails loudly (SPEC §5).

The fit runs on one BLAS thread and one OpenBLAS kernel: ARPACK's products go through OpenBLAS, whose sums
are ordered by its thread count and by the kernel it chose for the CPU, and k-means carries a last-digit
difference into other codes. On taobao-ecomm-2019 one and two threads gave different codes for every item
(18,567 and 18,562 distinct prefixes), and so did an Intel Xeon's AVX-512 kernels and an AMD EPYC's
(18,548 and 18,567). Pinned to one thread and the Haswell kernels (:mod:`bench.blas`), the codes are a
function of the split and the config on one OpenBLAS build, on any x86-64 CPU with AVX2; every result
records their fingerprint, so that runs on other codes (another build's, another processor's) are never
mistaken for the same run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from filelock import FileLock
from scipy.cluster.vq import kmeans2
from scipy.sparse.linalg import svds
from threadpoolctl import threadpool_limits

from bench.blas import run_pinned
from bench.data.split import Split
from bench.errors import BenchError
from bench.hashing import config_hash
from bench.io import write_json, write_npz


@dataclass(frozen=True)
class SemanticIdConfig:
    levels: int = 3
    """Residual k-means levels; a dedup level is added, so L = levels + 1."""
    codebook_size: int = 256
    svd_dim: int = 32
    window: int = 5
    features: tuple[str, ...] = ("category", "brand", "seller")
    feature_dim: int = 16
    kmeans_iters: int = 30
    min_utilisation: float = 0.2
    """A level using fewer than this share of its usable codes (min(C, distinct vectors)) has collapsed."""
    seed: int = 0


@dataclass(frozen=True)
class SemanticIds:
    """Token tuples of every item and the maps between tuples and items.

    Attributes:
        codes: (I, L) int64; ``codes[i, l]`` is item i's token at level l, in ``[0, vocab_sizes[l])``.
        vocab_sizes: (L,) tokens per level; the last is the largest collision group.
        stats: collision rate, utilisation and entropy per level, largest collision group, and the codes'
            ``fingerprint``.
    """

    codes: np.ndarray
    vocab_sizes: tuple[int, ...]
    stats: dict[str, object]

    @property
    def n_levels(self) -> int:
        return self.codes.shape[1]

    def item_of(self, tuples: np.ndarray) -> np.ndarray:
        """(…, L) token tuples → (…) item index, -1 where no item has that tuple."""
        lookup = {tuple(row): i for i, row in enumerate(self.codes.tolist())}
        flat = tuples.reshape(-1, self.n_levels).tolist()
        return np.array([lookup.get(tuple(row), -1) for row in flat], dtype=np.int64).reshape(tuples.shape[:-1])


def fingerprint(codes: np.ndarray) -> str:
    """16 hex digits of SHA-256 over (I, L) codes as int64: which semantic IDs a run was trained on."""
    return hashlib.sha256(np.ascontiguousarray(codes, dtype=np.int64).tobytes()).hexdigest()[:16]


def same_codes(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether two runs' records of their semantic IDs (``generation.semantic_ids``: the stats of
    :class:`SemanticIds`) name the same codes: by fingerprint when both have one; a record written before
    fingerprints were recorded is matched on its statistics (collision rate, entropies, utilisation, to every
    digit), which two different sets of codes practically never share."""
    if "fingerprint" in a and "fingerprint" in b:
        return a["fingerprint"] == b["fingerprint"]
    return {k: v for k, v in a.items() if k != "fingerprint"} == {k: v for k, v in b.items() if k != "fingerprint"}


def item_vectors(split: Split, cfg: SemanticIdConfig) -> np.ndarray:
    """(I, D) float64 item vectors from training co-occurrence and side features."""
    rng = np.random.default_rng(cfg.seed)
    n = split.n_items
    train = split.train_mask()
    items = split.items
    user_of = np.repeat(np.arange(split.n_users), np.diff(split.offsets))
    rows, cols = [], []
    for d in range(1, cfg.window + 1):
        a, b = np.arange(len(items) - d), np.arange(d, len(items))
        ok = train[a] & train[b] & (user_of[a] == user_of[b])
        rows.append(items[a[ok]])
        cols.append(items[b[ok]])
    r, c = np.concatenate(rows), np.concatenate(cols)
    counts = sp.coo_matrix((np.ones(len(r)), (r, c)), shape=(n, n)).tocsr()
    counts = counts + counts.T
    counts.data = np.log1p(counts.data)
    blocks = []
    k = min(cfg.svd_dim, n - 2)
    if counts.nnz and k >= 1:
        u, s, _ = svds(counts, k=k, random_state=cfg.seed)
        collaborative = u * np.sqrt(s)
        # Items without training co-occurrence get round-off (~1e-17) rows, which normalising would blow
        # up into arbitrary unit vectors: they have no collaborative signal, so zero them.
        collaborative[np.diff(counts.indptr) == 0] = 0.0
        blocks.append(_normalise(collaborative))
    for name in cfg.features:
        values = split.item_features.get(name)
        if values is None:
            continue
        table = rng.standard_normal((int(values.max()) + 2, cfg.feature_dim))
        table[-1] = 0.0  # -1 (unknown) indexes the last row: no feature signal
        blocks.append(_normalise(table[values]))
    if not blocks:
        raise BenchError("semantic IDs: no co-occurrence in the training data and no item features to build from")
    return np.concatenate(blocks, axis=1)


def _normalise(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)


def kmeans_pp(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding (Arthur & Vassilvitskii 2007): each next center is drawn with probability
    proportional to the squared distance to the nearest center so far. Vectorised: SciPy's own
    ``minit="++"`` took 134 s for 30k items × 256 centers here; this takes well under a second."""
    centers = np.empty((k, x.shape[1]))
    centers[0] = x[rng.integers(len(x))]
    nearest = ((x - centers[0]) ** 2).sum(axis=1)
    for j in range(1, k):
        total = nearest.sum()
        index = rng.choice(len(x), p=nearest / total) if total > 0 else rng.integers(len(x))
        centers[j] = x[index]
        nearest = np.minimum(nearest, ((x - centers[j]) ** 2).sum(axis=1))
    return centers


def fit(split: Split, cfg: SemanticIdConfig) -> SemanticIds:
    """Residual k-means over :func:`item_vectors`, then the dedup level, on one BLAS thread and the pinned
    OpenBLAS kernel (module doc)."""
    return run_pinned(_fit_one_thread, split, cfg)


def _fit_one_thread(split: Split, cfg: SemanticIdConfig) -> SemanticIds:
    with threadpool_limits(limits=1, user_api="blas"):
        return _fit(split, cfg)


def _fit(split: Split, cfg: SemanticIdConfig) -> SemanticIds:
    vectors = item_vectors(split, cfg)
    residual = vectors.copy()
    n = len(vectors)
    codes = np.zeros((n, cfg.levels + 1), dtype=np.int64)
    stats: dict[str, object] = {"items": n, "codebook_size": cfg.codebook_size}
    for level in range(cfg.levels):
        distinct = len(np.unique(residual.round(10), axis=0))
        k = min(cfg.codebook_size, distinct)
        init = kmeans_pp(residual, k, np.random.default_rng(cfg.seed + level))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # kmeans2 warns about empty clusters; utilisation is checked below
            centroids, labels = kmeans2(residual, init, iter=cfg.kmeans_iters, minit="matrix")
        codes[:, level] = labels
        residual = residual - centroids[labels]
        used = np.bincount(labels, minlength=cfg.codebook_size)
        p = used[used > 0] / n
        utilisation = (used > 0).sum() / max(1, k)
        stats[f"level{level}_used"] = int((used > 0).sum())
        stats[f"level{level}_utilisation"] = float(utilisation)
        stats[f"level{level}_entropy"] = float(-(p * np.log(p)).sum() / np.log(cfg.codebook_size))
        if utilisation < cfg.min_utilisation:
            raise BenchError(
                f"semantic IDs: codebook collapsed at level {level + 1}: {int((used > 0).sum())} of {k} usable codes "
                f"used (minimum share {cfg.min_utilisation}); check the item vectors or lower codebook_size"
            )
    codes, collisions = with_last_level(codes[:, : cfg.levels])
    stats.update(collisions)
    vocab = tuple([cfg.codebook_size] * cfg.levels + [collisions["largest_collision_group"]])
    return SemanticIds(codes, vocab, stats)


def with_last_level(prefix: np.ndarray) -> tuple[np.ndarray, dict[str, object]]:
    """prefix (I, L-1) int64 → codes (I, L) int64 whose last level enumerates the items that share a prefix
    (in index order), so no two items share a code; and what the prefixes' collisions were: the share of
    items whose prefix another item has, the largest such group, the distinct prefixes, the fingerprint."""
    n = len(prefix)
    group, sizes = _groups(prefix)
    order = np.argsort(group, kind="stable")  # within a group, items in index order
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    codes = np.concatenate([prefix, rank[:, None]], axis=1).astype(np.int64)
    return codes, {
        "collision_rate": float((sizes[group] > 1).mean()),
        "largest_collision_group": int(sizes.max()),
        "distinct_prefixes": len(sizes),
        "fingerprint": fingerprint(codes),
    }


def _groups(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """rows (I, P) → (I,) int64 index of each item's distinct row, and (G,) items per distinct row."""
    _, group, sizes = np.unique(rows, axis=0, return_inverse=True, return_counts=True)
    return group.reshape(-1), sizes


TRAINING_EVENT_BUCKETS: tuple[tuple[int, int | None], ...] = ((0, 0), (1, 1), (2, 2), (3, 5), (6, None))


def collisions_by_training_events(codes: np.ndarray, events: np.ndarray) -> list[tuple[str, int, float]]:
    """Where a fit's prefix collisions fall: for items with 0, 1, 2, 3–5 and 6 or more training events,
    (bucket, items, share of them whose first L-1 tokens another item has too).

    codes: (I, L) int64; events: (I,) int64 training events per item. An item with no training
    co-occurrence is placed by its side features alone, so collisions that come from cold items fall in
    the first buckets (``bench data stats --semantic-ids``).
    """
    group, sizes = _groups(codes[:, :-1])
    shared = sizes[group] > 1
    rows = []
    for low, high in TRAINING_EVENT_BUCKETS:
        inside = (events >= low) & (events <= (high if high is not None else np.iinfo(np.int64).max))
        name = f"{low}" if low == high else (f"{low}-{high}" if high is not None else f"{low}+")
        rows.append((name, int(inside.sum()), float(shared[inside].mean()) if inside.any() else 0.0))
    return rows


def collisions_and_features(codes: np.ndarray, features: list[np.ndarray]) -> tuple[int, float, float]:
    """Whether a fit's collisions are items its side features cannot tell apart: (distinct sets of feature
    values, share of items whose values of every feature another item has too, share of prefix-collision
    groups whose items all have the same feature values). codes: (I, L) int64; features: the fit's side
    features, each (I,) int64."""
    group, sizes = _groups(codes[:, :-1])
    same, same_sizes = _groups(np.stack(features, axis=1))
    pairs = np.unique(np.stack([group, same], axis=1), axis=0)  # (prefix group, feature values) that occur
    values_per_group = np.bincount(pairs[:, 0], minlength=len(sizes))
    colliding = sizes > 1
    within = float((values_per_group[colliding] == 1).mean()) if colliding.any() else 0.0
    return len(same_sizes), float((same_sizes[same] > 1).mean()), within


def semantic_ids_path(split: Split, cfg: SemanticIdConfig, cache_dir: Path) -> Path:
    """Where :func:`load_or_fit` caches a split's IDs: by split fingerprint and config."""
    return cache_dir / f"{split.fingerprint}-semids-{config_hash(cfg)}.npz"


def load_or_fit(split: Split, cfg: SemanticIdConfig, cache_dir: Path | None) -> SemanticIds:
    """Fit once per (split fingerprint, config) and keep it next to the split cache."""
    if cache_dir is None:
        return fit(split, cfg)
    path = semantic_ids_path(split, cfg, cache_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(path.with_suffix(".lock")):  # jobs in parallel workers fit it once, the others wait and read
        if path.exists():
            with np.load(path) as z:
                codes, vocab = z["codes"], tuple(int(v) for v in z["vocab_sizes"])
            # The fingerprint of the codes read, not of what the JSON says (older caches have none).
            return SemanticIds(codes, vocab, {**_load_stats(path), "fingerprint": fingerprint(codes)})
        ids = fit(split, cfg)
        write_json(path.with_suffix(".json"), {"config": dataclasses.asdict(cfg), **ids.stats})
        write_npz(path, codes=ids.codes, vocab_sizes=np.asarray(ids.vocab_sizes))
    return ids


def _load_stats(path: Path) -> dict[str, object]:
    import json

    stats = json.loads(path.with_suffix(".json").read_text())
    stats.pop("config", None)
    return stats


def random_like(ids: SemanticIds, seed: int) -> SemanticIds:
    """Random, collision-free codes of the same shape as ``ids`` (the diagnosis's control): each item's first
    levels drawn uniformly from the same codebooks, the last level enumerating items that share them, as
    :func:`fit` does. A model that does as well on these has not used what the fitted codes encode."""
    rng = np.random.default_rng(seed)
    n = len(ids.codes)
    head = np.stack([rng.integers(0, v, n) for v in ids.vocab_sizes[:-1]], axis=1)
    codes, collisions = with_last_level(head)
    vocab = (*ids.vocab_sizes[:-1], collisions["largest_collision_group"])
    return SemanticIds(codes, vocab, {"random": True, **collisions})
