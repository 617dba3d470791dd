"""Two-sided paired permutation (sign-flip) test of the mean difference, by SciPy's ``permutation_test``
(``permutation_type="samples"``): under H0 each target's pair is exchangeable, so the sign of each
difference d_i = a_i − b_i is flipped at random; p = share of 10,000 seeded resamples whose |mean| reaches the
observed one (Fisher 1935; the randomisation test of Smucker, Allan & Carterette 2007 for IR metrics)."""

from __future__ import annotations

import numpy as np
from scipy import stats

NAME = "permutation"
LABEL = "two-sided paired permutation test of the mean per-target difference (10,000 sign flips)"
RESAMPLES = 10_000
SEED = 0


def pvalue(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if len(a) == 0 or np.all(a == b):
        return 1.0
    result = stats.permutation_test(
        (a, b), lambda x, y, axis: np.mean(x - y, axis=axis), permutation_type="samples", vectorized=True,
        n_resamples=RESAMPLES, alternative="two-sided", rng=np.random.default_rng(SEED),
    )  # fmt: skip
    return float(result.pvalue)
