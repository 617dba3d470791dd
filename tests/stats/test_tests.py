from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from bench import stats
from bench.errors import BenchError


def test_every_test_is_found_by_name() -> None:
    assert set(stats.available()) >= {"wilcoxon", "ttest", "permutation"}
    with pytest.raises(BenchError, match="unknown significance test 'z' .*known: permutation, ttest, wilcoxon"):
        stats.get("z")


@pytest.mark.parametrize("name", ["wilcoxon", "ttest", "permutation"])
def test_no_difference_is_p_one(name: str) -> None:
    a = np.array([0.0, 1.0, 0.5])
    assert stats.get(name).pvalue(a, a.copy()) == 1.0


@pytest.mark.parametrize("name", ["wilcoxon", "ttest", "permutation"])
def test_a_clear_difference_is_significant(name: str) -> None:
    rng = np.random.default_rng(1)
    b = rng.random(300)
    assert stats.get(name).pvalue(b + 0.1 + 0.01 * rng.random(300), b) < 1e-3


def test_wilcoxon_and_t_match_scipy() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.random(200), rng.random(200)
    assert stats.get("wilcoxon").pvalue(a, b) == pytest.approx(sps.wilcoxon(a, b).pvalue)
    assert stats.get("ttest").pvalue(a, b) == pytest.approx(sps.ttest_rel(a, b).pvalue)


def test_permutation_by_hand() -> None:
    # Three targets with differences (1, 1, 1): of the 2^3 sign patterns only (+,+,+) and (−,−,−) reach
    # |mean| = 1, so the exact two-sided p is 2/8 (SciPy enumerates all patterns when there are fewer
    # than the resamples asked for).
    assert stats.get("permutation").pvalue(np.ones(3), np.zeros(3)) == pytest.approx(0.25)


def test_constant_nonzero_difference() -> None:
    assert stats.get("ttest").pvalue(np.ones(10), np.zeros(10)) == 0.0
    assert stats.get("wilcoxon").pvalue(np.ones(10), np.zeros(10)) < 0.01
