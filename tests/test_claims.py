from __future__ import annotations

import numpy as np

from bench.claims import ABLATION_ORDER, PAPER_TABLE1, Model, bootstrap_ci, check, effect_text
from bench.metrics import METRICS

N = 400


def _model(name: str, level: float, seed: int) -> Model:
    """Per-target hits with probability ``level`` (every metric alike)."""
    hits = (np.random.default_rng(seed).random(N) < level).astype(float)
    return Model(name, name.upper(), {m: hits for m in METRICS}, {0: {m: float(hits.mean()) for m in METRICS}})


def _verdicts(table1: dict, table2: dict, sweep: dict) -> dict[str, str]:
    return {c.key: c.verdict for c in check(table1, table2, sweep, "wilcoxon")}


def test_a_paper_like_world_reproduces_every_claim() -> None:
    # baselines in the paper's N@10 order, RCLRec far ahead; ablations in the claimed order; k rises then flat
    baselines = sorted((n for n in PAPER_TABLE1 if n != "rclrec"), key=lambda n: PAPER_TABLE1[n][3])
    table1 = {n: _model(n, 0.2 + 0.05 * i, i) for i, n in enumerate(baselines)}
    table1["rclrec"] = _model("rclrec", 0.95, 99)
    table2 = {n: _model(n, 0.9 - 0.25 * i, 10 + i) for i, n in enumerate(ABLATION_ORDER)}
    sweep = {k: _model(f"k{k}", min(0.3 + 0.2 * k, 0.9), 20 + min(k, 4)) for k in range(1, 7)}
    assert _verdicts(table1, table2, sweep) == dict.fromkeys("abcde", "reproduced")


def test_a_world_against_the_paper_does_not() -> None:
    baselines = sorted((n for n in PAPER_TABLE1 if n != "rclrec"), key=lambda n: -PAPER_TABLE1[n][3])  # reversed
    table1 = {n: _model(n, 0.2 + 0.05 * i, i) for i, n in enumerate(baselines)}
    table1["rclrec"] = _model("rclrec", 0.05, 99)
    table2 = {n: _model(n, 0.1 + 0.25 * i, 10 + i) for i, n in enumerate(ABLATION_ORDER)}  # reversed order
    sweep = {k: _model(f"k{k}", 0.9 - 0.1 * k, 20 + k) for k in range(1, 7)}  # falls with k
    assert _verdicts(table1, table2, sweep) == dict.fromkeys("abcde", "not reproduced")


def test_no_difference_is_inconclusive_and_missing_models_are_not_run() -> None:
    same = {n: _model(n, 0.5, 0) for n in PAPER_TABLE1}  # identical per-target values everywhere
    verdicts = _verdicts(same, {n: _model(n, 0.5, 0) for n in ABLATION_ORDER}, {k: _model("k", 0.5, 0) for k in range(1, 7)})
    assert verdicts == {"a": "inconclusive", "b": "inconclusive", "c": "inconclusive", "d": "inconclusive", "e": "inconclusive"}
    assert _verdicts({}, {}, {}) == dict.fromkeys("abcde", "not run")


def test_a_curve_that_peaks_at_k4_and_then_falls_does_not_flatten() -> None:
    # R@10 hit rates 0.3 at k=1, 0.8 at k=4, 0.3 at k=6 on 400 targets: both changes are about 16 standard
    # errors from zero, so the rise is significant and so is the fall, which the paper's "marginal gains" excludes
    sweep = {k: _model(f"k{k}", 0.8 if k == 4 else 0.3, 30 + k) for k in range(1, 7)}
    assert _verdicts({}, {}, sweep)["d"] == "not reproduced"
    flat = {k: _model(f"k{k}", 0.8 if k >= 4 else 0.3, 30 + min(k, 4)) for k in range(1, 7)}  # k=6 is k=4's hits
    assert _verdicts({}, {}, flat)["d"] == "reproduced"


def test_a_partial_study_can_refute_but_not_confirm_claims_about_every_baseline() -> None:
    """RCLRec far ahead of the one baseline that ran: (a) and (b) stay inconclusive until the other six run;
    RCLRec far behind it: not reproduced already, since no further baseline can undo that."""
    ahead = {"hstu": _model("hstu", 0.2, 1), "rclrec": _model("rclrec", 0.95, 2)}
    claims = {c.key: c for c in check(ahead, {}, {}, "wilcoxon")}
    assert claims["a"].verdict == claims["b"].verdict == "inconclusive"
    assert claims["a"].ours.endswith("; 1 of 7 paper baselines ran") and "held back" in claims["b"].rule
    behind = {"hstu": _model("hstu", 0.6, 1), "rclrec": _model("rclrec", 0.1, 2)}
    verdicts = {c.key: c.verdict for c in check(behind, {}, {}, "wilcoxon")}
    assert verdicts["a"] == "not reproduced"
    assert verdicts["b"] == "not reproduced"


def test_the_baseline_order_needs_five_baselines_to_be_confirmed() -> None:
    """The exact two-sided Kendall test of a perfect agreement: p = 2/4! = 0.083 for four baselines, 2/5! = 0.017
    for five; a reversed order is refuted with three."""
    order = sorted((n for n in PAPER_TABLE1 if n != "rclrec"), key=lambda n: PAPER_TABLE1[n][3])
    for n, verdict in ((4, "inconclusive"), (5, "reproduced")):
        claim = next(c for c in check({m: _model(m, 0.2 + 0.1 * i, i) for i, m in enumerate(order[:n])}, {}, {}, "wilcoxon") if c.key == "e")
        assert (claim.verdict, claim.p) == (verdict, f"{2 / np.prod(range(1, n + 1)):.2g}"), n
        assert "below five baselines" in claim.rule and "can change as the others join" in claim.rule
        assert claim.ours.endswith(f"; {n} of 7 paper baselines ran")  # a partial order says it is one
    reversed_three = {m: _model(m, 0.5 - 0.1 * i, i) for i, m in enumerate(order[:3])}
    assert next(c for c in check(reversed_three, {}, {}, "wilcoxon") if c.key == "e").verdict == "not reproduced"


def test_bootstrap_ci_brackets_the_mean_difference() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.random(500), rng.random(500)
    low, high = bootstrap_ci(a, b)
    assert low < 100 * (a - b).mean() < high and high - low < 10


def _seeded(per_seed: dict[int, float]) -> Model:
    """A model whose seed s scores ``per_seed[s]`` on every metric (per-target values: a constant at the mean)."""
    mean = float(np.mean(list(per_seed.values())))
    return Model("m", "M", {m: np.full(N, mean) for m in METRICS}, {s: dict.fromkeys(METRICS, v) for s, v in per_seed.items()})


def test_the_seed_spread_pairs_the_seeds_both_ran() -> None:
    three = _seeded({0: 0.50, 1: 0.52, 2: 0.60})
    # seed by seed: 0.40 − 0.50 = −10, 0.48 − 0.52 = −4, 0.50 − 0.60 = −10 points
    assert effect_text(_seeded({0: 0.40, 1: 0.48, 2: 0.50}), three).endswith("; seeds -10.00 … -4.00")
    # a model still training its seed 2: seeds 0 and 1 are paired, not dropped, and the text names them
    assert effect_text(_seeded({0: 0.40, 1: 0.48}), three).endswith("; seeds -10.00 … -4.00 (seeds 0, 1)")
    assert effect_text(_seeded({1: 0.48, 2: 0.50}), three).endswith("; seeds -10.00 … -4.00 (seeds 1, 2)")
    assert effect_text(_seeded({0: 0.40}), three).endswith("; one seed")
    assert effect_text(three, _seeded({0: 0.40})).endswith("; one seed")
    assert effect_text(_seeded({0: 0.40, 1: 0.48}), _seeded({1: 0.5, 2: 0.5})).endswith("; seed 1 alone in common")
