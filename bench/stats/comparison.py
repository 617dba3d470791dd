"""Comparisons of one reference model against the others: values first, formatting later."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from bench.stats import get
from bench.stats.holm import holm


@dataclass(frozen=True)
class Comparison:
    """``model`` against ``reference`` on one metric, over the same targets in the same order."""

    model: str
    reference: str
    metric: str
    effect: float
    """Mean per-target difference, model − reference (a fraction: 0.01 is one point)."""
    p: float
    p_holm: float
    """Holm-corrected across the models compared with the reference on this metric."""
    test: str
    n: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare(
    reference: str, per_target: Mapping[str, Mapping[str, np.ndarray]], metrics: Sequence[str], test: str
) -> dict[str, dict[str, Comparison]]:
    """model → metric → :class:`Comparison` of every model in ``per_target`` (name → metric → (T,) values)
    against ``reference``; one Holm family per metric."""
    pvalue = get(test).pvalue
    others = [m for m in per_target if m != reference]
    out: dict[str, dict[str, Comparison]] = {m: {} for m in others}
    for metric in metrics:
        ref = np.asarray(per_target[reference][metric], dtype=np.float64)
        values = [np.asarray(per_target[m][metric], dtype=np.float64) for m in others]
        for v in values:
            if v.shape != ref.shape:
                raise ValueError(f"paired tests need equal shapes, got {v.shape} and {ref.shape}")
        ps = [pvalue(v, ref) for v in values]
        for name, v, p, adj in zip(others, values, ps, holm(ps)):
            out[name][metric] = Comparison(name, reference, metric, float((v - ref).mean()) if len(v) else 0.0,
                                           float(p), float(adj), test, len(v))  # fmt: skip
    return out
