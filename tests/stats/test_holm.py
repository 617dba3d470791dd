from __future__ import annotations

import numpy as np
import pytest

from bench.stats.holm import holm


def holm_by_definition(p: list[float], alpha: float) -> list[bool]:
    """Holm's procedure as the paper states it, independently of the adjusted-p formula: walk the sorted
    p-values, reject H_(i) while p_(i) <= alpha / (m - i + 1), stop at the first that is not."""
    m = len(p)
    reject = [False] * m
    for rank, i in enumerate(sorted(range(m), key=lambda j: p[j])):
        if p[i] > alpha / (m - rank):
            break
        reject[i] = True
    return reject


def test_by_hand() -> None:
    # sorted p: 0.01, 0.02, 0.04 → 3·0.01 = 0.03, 2·0.02 = 0.04, 1·0.04 = 0.04 (monotone)
    assert holm([0.04, 0.01, 0.02]) == pytest.approx([0.04, 0.03, 0.04])
    # capping at 1 and enforcing monotonicity: 0.3·2 = 0.6, max(0.6, 0.5·1) = 0.6
    assert holm([0.5, 0.3]) == pytest.approx([0.6, 0.6])
    assert len(holm([])) == 0


@pytest.mark.parametrize("seed", range(20))
def test_agrees_with_the_step_down_procedure(seed: int) -> None:
    rng = np.random.default_rng(seed)
    p = list(rng.random(int(rng.integers(1, 12))) ** 3)  # many small p-values, some ties of scale
    adjusted = holm(p)
    for alpha in (0.01, 0.05, 0.1):
        assert list(adjusted <= alpha) == holm_by_definition(p, alpha)
