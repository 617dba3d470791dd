from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from bench.stats import holm, paired_tests


def test_holm_by_hand() -> None:
    # sorted p: 0.01, 0.02, 0.04 → 3·0.01 = 0.03, 2·0.02 = 0.04, 1·0.04 = 0.04 (monotone)
    assert holm([0.04, 0.01, 0.02]) == pytest.approx([0.04, 0.03, 0.04])
    # capping at 1 and enforcing monotonicity: 0.3·2 = 0.6, max(0.6, 0.5·1) = 0.6
    assert holm([0.5, 0.3]) == pytest.approx([0.6, 0.6])
    assert len(holm([])) == 0


def test_all_zero_difference_is_no_difference() -> None:
    a = np.array([0.0, 1.0, 0.5])
    assert paired_tests(a, a.copy()) == {"mean_diff": 0.0, "wilcoxon_p": 1.0, "ttest_p": 1.0, "n": 3}


def test_matches_scipy_on_random_pairs() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.random(200), rng.random(200)
    out = paired_tests(a, b)
    assert out["wilcoxon_p"] == pytest.approx(sps.wilcoxon(a, b).pvalue)
    assert out["ttest_p"] == pytest.approx(sps.ttest_rel(a, b).pvalue)
    assert out["mean_diff"] == pytest.approx((a - b).mean())


def test_a_clear_difference_is_significant() -> None:
    rng = np.random.default_rng(1)
    b = rng.random(300)
    out = paired_tests(b + 0.1 + 0.01 * rng.random(300), b)
    assert out["wilcoxon_p"] < 1e-10 and out["ttest_p"] < 1e-10


def test_constant_nonzero_difference() -> None:
    out = paired_tests(np.ones(10), np.zeros(10))
    assert out["ttest_p"] == 0.0 and out["wilcoxon_p"] < 0.01
