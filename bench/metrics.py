"""Ranking metrics on full-catalogue ranks: one number per target, averaged by the caller.

A rank is 1-based. A generative model's list that does not contain the target gives rank ``inf``.

References: Järvelin & Kekäläinen, "Cumulated gain-based evaluation of IR techniques", TOIS 2002 (NDCG);
the pessimistic tie rule follows Rendle, "Evaluation Metrics for Item Recommendation under Sampling", and
keeps a constant (or collapsed) scorer from looking good.
"""

from __future__ import annotations

import numpy as np
import torch

from bench.errors import NumericalError

CUTOFFS: tuple[int, ...] = (5, 10)
METRICS: tuple[str, ...] = tuple(f"{m}@{k}" for m in ("recall", "ndcg") for k in CUTOFFS)


def ranks_from_scores(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Pessimistic rank of each target among all items.

    rank = 1 + #{items scoring strictly higher} + #{other items scoring equal}

    Args:
        scores: (B, I) float, higher is better.
        targets: (B,) int64 target item index.

    Returns:
        (B,) int64 ranks in [1, I].

    Raises:
        NumericalError: if any score is NaN or infinite (a broken model that would otherwise rank silently).
    """
    if not torch.isfinite(scores).all():
        raise NumericalError("the model produced non-finite scores (NaN or inf)")
    target_scores = scores.gather(1, targets[:, None])
    higher_or_equal = (scores >= target_scores).sum(dim=1)  # includes the target itself
    return higher_or_equal.to(torch.int64)


def ranks_from_lists(lists: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Rank of each target in a generated list (position + 1), ``inf`` when absent.

    Args:
        lists: (B, K) int64 items in beam order, -1 padding; items must be unique within a row.
        targets: (B,) int64.

    Returns:
        (B,) float64 ranks.
    """
    hits = lists == targets[:, None]
    found = hits.any(axis=1)
    return np.where(found, hits.argmax(axis=1) + 1.0, np.inf)


def recall_at(ranks: np.ndarray, k: int) -> np.ndarray:
    """Recall@K per target: 1 if rank <= K else 0 (one relevant item per target)."""
    return (np.asarray(ranks, dtype=np.float64) <= k).astype(np.float64)


def ndcg_at(ranks: np.ndarray, k: int) -> np.ndarray:
    """NDCG@K per target with one relevant item: 1 / log2(rank + 1) if rank <= K else 0."""
    r = np.asarray(ranks, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.where(r <= k, 1.0 / np.log2(r + 1.0), 0.0)


def per_target(ranks: np.ndarray) -> dict[str, np.ndarray]:
    """Every metric of :data:`METRICS` for each target: name → (T,) float64."""
    out: dict[str, np.ndarray] = {}
    for name in METRICS:
        kind, k = name.split("@")
        out[name] = (recall_at if kind == "recall" else ndcg_at)(ranks, int(k))
    return out


def summarize(ranks: np.ndarray, is_repeat: np.ndarray | None = None) -> dict[str, float]:
    """Mean metrics over targets, plus ``repeat/…`` and ``new/…`` breakdowns when ``is_repeat`` is given."""
    out = {name: float(v.mean()) if len(v) else 0.0 for name, v in per_target(ranks).items()}
    if is_repeat is not None:
        for label, mask in (("repeat", is_repeat), ("new", ~is_repeat)):
            sub = per_target(ranks[mask])
            out |= {f"{label}/{n}": float(v.mean()) if len(v) else float("nan") for n, v in sub.items()}
            out[f"{label}/n_targets"] = int(mask.sum())
    return out
