"""Two-sided paired t-test (Student 1908) on per-target values, by SciPy: t = mean(d) / (sd(d) / √n) with
d = a − b and n − 1 degrees of freedom."""

from __future__ import annotations

import numpy as np
from scipy import stats

NAME = "ttest"
LABEL = "two-sided paired t-test on per-target values"


def pvalue(a: np.ndarray, b: np.ndarray) -> float:
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if len(diff) == 0 or np.all(diff == 0):
        return 1.0
    if np.all(diff == diff[0]):
        return 0.0  # a constant non-zero difference: the t statistic is infinite
    return float(stats.ttest_rel(a, b).pvalue)
