"""The paper's claims, each checked on one split with a stated rule: reproduced, not reproduced, or
inconclusive, with the effect in points, a 95% paired bootstrap confidence interval over targets, the
spread over seeds and the Holm-corrected p-value.

The paper's figures are its Table 1 (Tmall) and Table 2 (industrial ablation), in %; absolute numbers
depend on the paper's unpublished preprocessing, so the claims are about orderings, gaps and significance
(SPEC §1). A claim whose models are missing from the results is "not run".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats as sps

from bench import stats
from bench.metrics import METRICS
from bench.stats.holm import holm

ALPHA = 0.05
PAPER_TABLE1 = {  # R@5, R@10, N@5, N@10 (%) on Tmall
    "sasrec": (39.36, 44.79, 30.66, 32.72), "bert4rec": (40.47, 45.18, 31.39, 33.25), "pbat": (40.21, 45.58, 31.16, 33.47),
    "hstu": (40.63, 45.67, 31.60, 33.79), "tiger": (42.61, 45.92, 32.96, 35.47), "mbgen": (44.10, 47.57, 35.14, 37.94),
    "gear": (44.43, 47.36, 35.24, 37.10), "rclrec": (49.78, 52.37, 40.36, 42.48),
}  # fmt: skip
PAPER_TABLE2 = {  # industrial ablation, same metrics
    "rclrec": (26.21, 29.62, 20.80, 21.91), "rclrec-no-qal": (25.55, 28.73, 20.15, 21.13),
    "rclrec-recent-k": (24.57, 27.91, 19.37, 20.49), "rclrec-no-rcpm": (23.61, 26.78, 18.83, 19.89),
}  # fmt: skip
ABLATION_ORDER = ("rclrec", "rclrec-no-qal", "rclrec-recent-k", "rclrec-no-rcpm")
PRIMARY = "ndcg@10"


@dataclass(frozen=True)
class Claim:
    key: str
    statement: str
    paper: str
    ours: str
    effect: str
    """Points (% units), with its 95% paired bootstrap CI over targets and the spread over seeds."""
    p: str
    verdict: str
    rule: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Model:
    """What the claims read of one model: per-target values (mean over seeds) and each seed's means."""

    name: str
    display: str
    per_target: Mapping[str, np.ndarray]
    per_seed: Mapping[int, Mapping[str, float]]
    """seed → its metrics' means."""

    def mean(self, metric: str) -> float:
        return float(np.mean(self.per_target[metric]))


def bootstrap_ci(a: np.ndarray, b: np.ndarray, seed: int = 0) -> tuple[float, float]:
    """95% percentile CI of mean(a − b) over targets resampled in pairs (SciPy's ``bootstrap``), in points."""
    if len(a) < 2 or np.all(a == b):
        d = 100 * float(np.mean(a - b)) if len(a) else 0.0
        return d, d
    res = sps.bootstrap((a, b), lambda x, y, axis: np.mean(x - y, axis=axis), paired=True, vectorized=True,
                        n_resamples=2000, confidence_level=0.95, method="percentile", rng=np.random.default_rng(seed))  # fmt: skip
    return 100 * float(res.confidence_interval.low), 100 * float(res.confidence_interval.high)


def _seed_spread(a: Model, b: Model, metric: str) -> str:
    """The range of the per-seed difference over the seeds both ran, naming them when that is not every seed of
    each (a study still training its later seeds); "one seed" when either ran one, whose spread is unknown."""
    if len(a.per_seed) == 1 or len(b.per_seed) == 1:
        return "one seed"
    shared = sorted(a.per_seed.keys() & b.per_seed.keys())
    if len(shared) < 2:
        return "no two seeds in common" if not shared else f"seed {shared[0]} alone in common"
    diffs = [100 * (a.per_seed[s][metric] - b.per_seed[s][metric]) for s in shared]
    text = f"seeds {min(diffs):+.2f} … {max(diffs):+.2f}"
    if len(shared) < max(len(a.per_seed), len(b.per_seed)):
        text += f" (seeds {', '.join(map(str, shared))})"
    return text


def effect_text(a: Model, b: Model, metric: str = PRIMARY) -> str:
    low, high = bootstrap_ci(a.per_target[metric], b.per_target[metric])
    spread = _seed_spread(a, b, metric)
    return f"{100 * (a.mean(metric) - b.mean(metric)):+.2f} [{low:+.2f}, {high:+.2f}]" + (f"; {spread}" if spread else "")


def pvalues(pairs: Sequence[tuple[Model, Model]], metric: str, test: str) -> list[float]:
    """Holm-corrected p-values of the paired test for each (a, b) on ``metric`` (one family)."""
    raw = [stats.get(test).pvalue(a.per_target[metric], b.per_target[metric]) for a, b in pairs]
    return list(holm(raw)) if raw else []


def _paper_row(table: Mapping[str, tuple[float, ...]], name: str) -> str:
    return "/".join(f"{v:.2f}" for v in table[name]) if name in table else "–"


def check(table1: Mapping[str, Model], table2: Mapping[str, Model], sweep: Mapping[int, Model], test: str) -> list[Claim]:
    """Claims (a)–(e) on the models found (name → :class:`Model`); ``sweep`` maps k to RCLRec at that k."""
    return [_best(table1, test), _significant(table1, test), _ablation(table2, test), _curve(sweep, test),
            _baseline_order(table1)]  # fmt: skip


def _verdict(effects: Sequence[float], ps: Sequence[float]) -> str:
    """Every effect positive and significant: reproduced; some effect significantly negative: not
    reproduced; otherwise inconclusive."""
    if all(d > 0 and p < ALPHA for d, p in zip(effects, ps)):
        return "reproduced"
    if any(d < 0 and p < ALPHA for d, p in zip(effects, ps)):
        return "not reproduced"
    return "inconclusive"


PARTIAL = "; while some of the paper's baselines have not run, a 'reproduced' is held back as inconclusive"


def _settled(verdict: str, models: Mapping[str, Model]) -> str:
    """A claim about *every* baseline is reproduced only once every paper baseline has run. A 'not
    reproduced' is final on a partial study: a baseline significantly ahead stays ahead whatever else runs."""
    return "inconclusive" if verdict == "reproduced" and _missing(models) else verdict


def _missing(models: Mapping[str, Model]) -> list[str]:
    return [n for n in PAPER_TABLE1 if n != "rclrec" and n not in models]


def _ran(models: Mapping[str, Model]) -> str:
    """'; 1 of 7 paper baselines ran' on a partial study, nothing on a whole one."""
    missing = _missing(models)
    return f"; {len(PAPER_TABLE1) - 1 - len(missing)} of {len(PAPER_TABLE1) - 1} paper baselines ran" if missing else ""


def _not_run(key: str, statement: str, what: str, rule: str) -> Claim:
    return Claim(key, statement, "", f"not run: {what}", "", "", "not run", rule)


def _best(models: Mapping[str, Model], test: str) -> Claim:
    statement = "(a) RCLRec is the best model on all four metrics"
    rule = (f"reproduced if RCLRec has the highest mean on every metric and its lead over the runner-up is significant "
            f"({test}, Holm over the four metrics, p<{ALPHA}); not reproduced if a baseline is significantly ahead on "
            f"some metric; otherwise inconclusive{PARTIAL}")  # fmt: skip
    baselines = [m for n, m in models.items() if n in PAPER_TABLE1 and n != "rclrec"]
    if "rclrec" not in models or not baselines:
        return _not_run("a", statement, "RCLRec and the paper's baselines", rule)
    ours = models["rclrec"]
    runner_up = {m: max(baselines, key=lambda b: b.mean(m)) for m in METRICS}
    pvalue = stats.get(test).pvalue
    ps = list(holm([pvalue(ours.per_target[m], runner_up[m].per_target[m]) for m in METRICS]))  # one family: the metrics
    lead = [ours.mean(m) - runner_up[m].mean(m) for m in METRICS]
    verdict = _settled(_verdict(lead, ps), models)
    best = runner_up[PRIMARY]
    return Claim("a", statement, f"RCLRec {_paper_row(PAPER_TABLE1, 'rclrec')}; runner-up GEAR/MBGen",
                 "; ".join(f"{m}: RCLRec {'ahead of' if d > 0 else 'behind'} {runner_up[m].display}" for m, d in zip(METRICS, lead))
                 + _ran(models),
                 f"N@10 vs {best.display}: {effect_text(ours, best)}", ", ".join(f"{p:.2g}" for p in ps), verdict, rule)  # fmt: skip


def _significant(models: Mapping[str, Model], test: str) -> Claim:
    statement = "(b) RCLRec's gains over every baseline are significant after Holm"
    rule = (f"reproduced if RCLRec is ahead of every paper baseline on every metric with Holm-corrected p<{ALPHA} "
            "(one family per metric, as in Table 1); not reproduced if some baseline is significantly ahead; "
            f"otherwise inconclusive{PARTIAL}")  # fmt: skip
    baselines = [m for n, m in models.items() if n in PAPER_TABLE1 and n != "rclrec"]
    if "rclrec" not in models or not baselines:
        return _not_run("b", statement, "RCLRec and the paper's baselines", rule)
    ours = models["rclrec"]
    wins = losses = 0
    worst = None
    for m in METRICS:
        ps = pvalues([(ours, b) for b in baselines], m, test)
        for b, p in zip(baselines, ps):
            d = ours.mean(m) - b.mean(m)
            wins += d > 0 and p < ALPHA
            losses += d < 0 and p < ALPHA
            if m == PRIMARY and (worst is None or d < worst[1]):
                worst = (b, d, p)
    total = len(baselines) * len(METRICS)
    verdict = _settled("reproduced" if wins == total else "not reproduced" if losses else "inconclusive", models)
    b, _, p = worst
    return Claim("b", statement, "all gains significant (p<0.05)",
                 f"significantly ahead in {wins} of {total} (baseline, metric) pairs, significantly behind in {losses}"
                 + _ran(models),
                 f"N@10 vs the strongest, {b.display}: {effect_text(ours, b)}", f"{p:.2g}", verdict, rule)  # fmt: skip


def _ablation(models: Mapping[str, Model], test: str) -> Claim:
    statement = "(c) Ablation order: full > w/o QAL > Recent-k > w/o RCPM"
    rule = (f"on N@10: reproduced if the means follow the order and each adjacent gap is significant ({test}, Holm over "
            "the three gaps); not reproduced if some adjacent pair is significantly reversed; otherwise inconclusive")
    if not all(n in models for n in ABLATION_ORDER):
        return _not_run("c", statement, "the four ablation variants", rule)
    chain = [models[n] for n in ABLATION_ORDER]
    pairs = list(zip(chain, chain[1:]))
    ps = pvalues(pairs, PRIMARY, test)
    gaps = [a.mean(PRIMARY) - b.mean(PRIMARY) for a, b in pairs]
    verdict = _verdict(gaps, ps)
    ours = " > ".join(m.display for m in sorted(chain, key=lambda m: -m.mean(PRIMARY)))
    return Claim("c", statement, " > ".join(f"{_paper_row(PAPER_TABLE2, n).split('/')[-1]}" for n in ABLATION_ORDER) + " (N@10, industrial)",
                 ours, "; ".join(f"{a.display} − {b.display}: {effect_text(a, b)}" for a, b in pairs),
                 ", ".join(f"{p:.2g}" for p in ps), verdict, rule)  # fmt: skip


def _curve(sweep: Mapping[int, Model], test: str) -> Claim:
    statement = "(d) The curriculum-length curve rises to about k = 4, then flattens"
    # "Flattens" is the paper's "further increasing k brings only marginal gains": k=6 within noise of k=4.
    # A significant fall after k=4 is a peak, not a plateau, so it refutes the claim as a rise would.
    rule = (f"on R@10: reproduced if k=4 is significantly above k=1 and k=6 is not significantly different from k=4 "
            f"({test}, Holm over the two); not reproduced if k=1 is significantly above k=4 or k=6 is significantly "
            "above or below k=4; otherwise inconclusive")  # fmt: skip
    if not all(k in sweep for k in (1, 4, 6)):
        return _not_run("d", statement, "the sweep at k = 1, 4 and 6", rule)
    metric = "recall@10"
    k1, k4, k6 = sweep[1], sweep[4], sweep[6]
    p_rise, p_after = pvalues([(k4, k1), (k6, k4)], metric, test)
    rise = k4.mean(metric) - k1.mean(metric)  # only the rise needs a sign: any significant k6 − k4 refutes
    if rise > 0 and p_rise < ALPHA and p_after >= ALPHA:
        verdict = "reproduced"
    elif (rise < 0 and p_rise < ALPHA) or p_after < ALPHA:
        verdict = "not reproduced"
    else:
        verdict = "inconclusive"
    curve = ", ".join(f"k={k}: {100 * m.mean(metric):.2f}" for k, m in sorted(sweep.items()))
    return Claim("d", statement, "rises to k≈4, then flat (Figure 3)", f"R@10 {curve}",
                 f"k4 − k1: {effect_text(k4, k1, metric)}; k6 − k4: {effect_text(k6, k4, metric)}",
                 f"{p_rise:.2g}, {p_after:.2g}", verdict, rule)  # fmt: skip


def _baseline_order(models: Mapping[str, Model]) -> Claim:
    statement = "(e) The baselines keep the paper's order"
    rule = ("Kendall's τ between the paper's and our N@10 order of the paper's baselines: reproduced if τ > 0 with "
            f"p<{ALPHA} (SciPy's exact test), not reproduced if τ ≤ 0, otherwise inconclusive; below five baselines "
            f"not even the paper's exact order reaches p<{ALPHA} (four give p = {2 / math.factorial(4):.2g}), so (e) "
            "can then be refuted but not confirmed; while some of the paper's baselines have not run, either verdict is "
            "of those that ran and can change as the others join")  # a perfect order's exact two-sided p is 2/n!
    names = [n for n in PAPER_TABLE1 if n != "rclrec" and n in models]
    if len(names) < 3:
        return _not_run("e", statement, "at least three of the paper's baselines", rule)
    tau, p = sps.kendalltau([PAPER_TABLE1[n][3] for n in names], [models[n].mean(PRIMARY) for n in names])
    verdict = "reproduced" if tau > 0 and p < ALPHA else "not reproduced" if tau <= 0 else "inconclusive"
    ours = " < ".join(models[n].display for n in sorted(names, key=lambda n: models[n].mean(PRIMARY))) + _ran(models)
    paper = " < ".join(models[n].display for n in sorted(names, key=lambda n: PAPER_TABLE1[n][3]))
    return Claim("e", statement, paper, ours, f"Kendall's τ = {tau:+.2f}", f"{p:.2g}", verdict, rule)
