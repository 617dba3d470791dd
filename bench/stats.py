"""Paired significance tests over per-target metrics, with Holm's step-down correction."""

from __future__ import annotations

import numpy as np
from scipy import stats


def paired_tests(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Two-sided paired tests of per-target metrics ``a`` vs ``b`` (same targets, same order).

    Returns mean difference (a - b), Wilcoxon signed-rank p (zero differences dropped, Wilcoxon 1945) and
    paired t-test p. An all-zero difference vector means "no difference": both p-values are 1.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired tests need equal shapes, got {a.shape} and {b.shape}")
    diff = a - b
    if len(diff) == 0 or np.all(diff == 0):
        return {"mean_diff": 0.0, "wilcoxon_p": 1.0, "ttest_p": 1.0, "n": int(len(diff))}
    wilcoxon_p = float(stats.wilcoxon(a, b, zero_method="wilcox", alternative="two-sided").pvalue)
    if np.all(diff == diff[0]):
        ttest_p = 0.0  # a constant non-zero difference: the t statistic is infinite
    else:
        ttest_p = float(stats.ttest_rel(a, b).pvalue)
    return {"mean_diff": float(diff.mean()), "wilcoxon_p": wilcoxon_p, "ttest_p": ttest_p, "n": int(len(diff))}


def holm(pvalues: list[float] | np.ndarray) -> np.ndarray:
    """Holm (1979) step-down adjusted p-values, controlling the family-wise error rate.

    With p sorted ascending as p_(1..m): adj_(i) = max_{j<=i} min(1, (m - j + 1) p_(j)).
    SciPy's ``false_discovery_control`` offers only BH/BY (FDR), hence this function.
    """
    p = np.asarray(pvalues, dtype=np.float64)
    m = len(p)
    if m == 0:
        return p
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted = np.maximum.accumulate(scaled)
    out = np.empty(m)
    out[order] = adjusted
    return out
