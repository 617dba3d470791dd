"""Two-sided Wilcoxon signed-rank test (Wilcoxon 1945) on paired per-target values, zero differences
dropped (``zero_method="wilcox"``), by SciPy. Rank-based: robust to the heavy ties and skew of per-target
Recall/NDCG, the default of this harness."""

from __future__ import annotations

import numpy as np
from scipy import stats

NAME = "wilcoxon"
LABEL = "two-sided paired Wilcoxon signed-rank test on per-target values"


def pvalue(a: np.ndarray, b: np.ndarray) -> float:
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if len(diff) == 0 or np.all(diff == 0):
        return 1.0  # no difference at all
    return float(stats.wilcoxon(a, b, zero_method="wilcox", alternative="two-sided").pvalue)
