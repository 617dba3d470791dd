from __future__ import annotations

import numpy as np
import pytest

from bench.stats.comparison import compare
from bench.stats.holm import holm
from bench.stats.ttest import pvalue as t_pvalue


def test_compare_gives_effects_and_one_holm_family_per_metric() -> None:
    rng = np.random.default_rng(0)
    ref = rng.random(100)
    values = {"ref": {"m": ref}, "a": {"m": ref - 0.2 + 0.01 * rng.random(100)}, "b": {"m": ref + 0.001 * rng.random(100) - 0.0005}}
    out = compare("ref", values, ["m"], "ttest")
    assert set(out) == {"a", "b"}
    a, b = out["a"]["m"], out["b"]["m"]
    assert a.effect == pytest.approx((values["a"]["m"] - ref).mean()) and a.effect < -0.18
    raw = [t_pvalue(values[m]["m"], ref) for m in ("a", "b")]
    assert [a.p, b.p] == pytest.approx(raw)
    assert [a.p_holm, b.p_holm] == pytest.approx(list(holm(raw)))
    assert a.test == "ttest" and a.n == 100 and a.reference == "ref"
