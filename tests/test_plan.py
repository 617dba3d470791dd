"""Plans: every command resolves once into jobs with typed configs, identities and reuse links."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.errors import BenchError
from bench.plan import (
    Request,
    ablate_plan,
    diagnose_plan,
    only_questions,
    run_plan,
    selection_path,
    sweep_plan,
    tune_plan,
)


def _select(folder: Path, model: str, selected: dict, trial: str, profile: str = "smoke") -> None:
    path = selection_path(folder, model)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"model": model, "profile": profile, "selected": selected, "selected_trial": trial}))


def test_run_all_is_every_table1_model_in_table_order() -> None:
    plan = run_plan(Request(profile="smoke", seeds=2), None)
    names = [j.name for j in plan.jobs if j.seed == 0]
    assert names == ["pop", "recent", "sasrec", "bert4rec", "pbat", "hstu", "tiger", "mbgen", "gear", "rclrec"]
    assert len(plan.jobs) == 20 and {j.table for j in plan.jobs} == {"table1"}
    rclrec = next(j for j in plan.jobs if j.name == "rclrec")
    assert rclrec.display == "RCLRec" and rclrec.config.d_model == 32 and rclrec.reuse is None
    assert plan.folder == Path("results") / "synthetic"


def test_ablate_tuned_uses_the_parents_selection_for_every_variant(tmp_path: Path) -> None:
    req = Request(profile="smoke", seeds=2, results_dir=tmp_path, tuned=True)
    with pytest.raises(BenchError, match=r"rclrec has a tuning grid but .*rclrec.json does not exist"):
        ablate_plan(req)
    trial = "tuning/rclrec/learning_rate=0.003,dropout=0.3"
    _select(tmp_path / "synthetic", "rclrec", {"learning_rate": 0.003, "dropout": 0.3}, trial)
    plan = ablate_plan(req)
    assert [j.name for j in plan.jobs if j.seed == 0] == ["rclrec", "rclrec-no-rcpm", "rclrec-recent-k", "rclrec-no-qal"]
    for job in plan.jobs:
        assert (job.config.learning_rate, job.config.dropout) == (0.003, 0.3)
    by_name = {(j.name, j.seed): j for j in plan.jobs}
    assert by_name["rclrec", 0].reuse == trial and by_name["rclrec", 1].reuse is None  # the trial is seed 0
    assert by_name["rclrec-no-rcpm", 0].reuse is None and by_name["rclrec-no-rcpm", 0].config.prefix == "none"
    assert by_name["rclrec-no-qal", 0].config.lam == 0.0 and by_name["rclrec-no-qal", 0].extends == "rclrec"
    assert by_name["rclrec-no-qal", 0].table == "table2"
    _select(tmp_path / "synthetic", "rclrec", {"learning_rate": 0.003, "dropout": 0.3}, trial, profile="cpu")
    with pytest.raises(BenchError, match="tuned at profile 'cpu', not 'smoke'"):
        ablate_plan(req)


def test_set_applies_to_the_model_and_its_variants_the_variants_own_last() -> None:
    req = Request(profile="smoke", seeds=1, sets=("rclrec.epochs=1", "rclrec-no-qal.margin=0.2"))
    jobs = {j.name: j for j in ablate_plan(req).jobs}
    assert all(j.config.epochs == 1 for j in jobs.values())
    assert jobs["rclrec-no-qal"].config.margin == 0.2 and jobs["rclrec"].config.margin == 0.05
    assert jobs["rclrec-no-qal"].overrides == {"epochs": 1, "margin": 0.2}


def test_tune_plan_is_each_grid_point_at_seed_0() -> None:
    plan = tune_plan(Request(profile="smoke"), ["pop", "tiger"])
    assert [j.name for j in plan.jobs] == [
        "tuning/tiger/learning_rate=0.001,dropout=0.1", "tuning/tiger/learning_rate=0.001,dropout=0.3",
        "tuning/tiger/learning_rate=0.003,dropout=0.1", "tuning/tiger/learning_rate=0.003,dropout=0.3",
    ]  # fmt: skip
    assert {j.seed for j in plan.jobs} == {0} and {j.table for j in plan.jobs} == {None}
    assert plan.jobs[3].config.learning_rate == 0.003 and plan.jobs[3].overrides == {"learning_rate": 0.003, "dropout": 0.3}
    with pytest.raises(BenchError, match="rclrec-no-qal uses the tuning grid and selection of rclrec"):
        tune_plan(Request(profile="smoke"), ["rclrec-no-qal"])
    with pytest.raises(BenchError, match="has a 'tune' grid"):
        tune_plan(Request(profile="smoke"), ["pop"])


def test_sweep_points_are_their_own_results_and_the_default_point_reuses_the_model_run() -> None:
    plan = sweep_plan(Request(profile="smoke", seeds=1), "rclrec", "k", "2,4")
    k2, k4 = plan.jobs
    assert (k2.name, k2.config.k, k2.reuse, k2.table) == ("sweep/rclrec/k=2", 2, None, None)
    assert (k4.name, k4.config.k, k4.reuse) == ("sweep/rclrec/k=4", 4, "rclrec")
    assert k4.sweep == {"model": "rclrec", "param": "k", "value": 4, "display": "RCLRec"}
    with pytest.raises(BenchError, match="--values 2,x: expected comma-separated int values"):
        sweep_plan(Request(profile="smoke"), "rclrec", "k", "2,x")


def test_the_diagnosis_reuses_the_runs_it_would_only_repeat() -> None:
    jobs = {j.display: j for j in diagnose_plan(Request(profile="smoke")).jobs}
    assert jobs["reference: as configured"].reuse == "rclrec" and jobs["QAL: λ = 0.1"].reuse == "rclrec"
    assert jobs["semantic IDs: TIGER on the fitted codes"].reuse == "tiger"  # TIGER as configured
    assert jobs["QAL: λ = 0"].reuse is None and jobs["semantic IDs: TIGER on random collision-free codes"].reuse is None
    backbone = jobs["backbone: one encoder token per code and tied output heads, as TIGER and MBGen have"]
    assert (backbone.model, backbone.reuse, backbone.config.backbone) == ("rclrec-diagnostic", None, "token")


def test_a_tuned_diagnosis_runs_its_own_rows_while_tigers_grid_has_not_run(tmp_path: Path) -> None:
    req = Request(profile="smoke", results_dir=tmp_path, tuned=True)
    with pytest.raises(BenchError, match=r"rclrec has a tuning grid but .*rclrec.json does not exist"):
        diagnose_plan(req)  # the diagnosed model's own selection is never optional
    _select(tmp_path / "synthetic", "rclrec", {"learning_rate": 0.003, "dropout": 0.3}, "tuning/rclrec/x")
    plan = diagnose_plan(req)
    tiger_rows = ["semantic IDs: TIGER on the fitted codes", "semantic IDs: TIGER on random collision-free codes"]
    assert [display for display, _ in plan.waiting] == tiger_rows
    assert all("python -m bench tune --models tiger" in reason for _, reason in plan.waiting)
    assert {j.model for j in plan.jobs} == {"rclrec", "rclrec-diagnostic"}
    assert all(j.config.learning_rate == 0.003 for j in plan.jobs)
    _select(tmp_path / "synthetic", "tiger", {"learning_rate": 0.001}, "tuning/tiger/x")
    plan = diagnose_plan(req)
    assert plan.waiting == () and [j.display for j in plan.jobs if j.model == "tiger"] == tiger_rows


def test_diagnose_questions_computes_some_questions_under_their_own_row_names(tmp_path: Path) -> None:
    req = Request(profile="smoke", results_dir=tmp_path, tuned=True)
    _select(tmp_path / "synthetic", "rclrec", {"learning_rate": 0.003}, "tuning/rclrec/x")
    full = diagnose_plan(req)
    part = only_questions(full, ["Semantic-IDs", "budget"])
    kept = ("-reference", "-budget", "-semantic-IDs")
    assert [j.name for j in part.jobs] == [j.name for j in full.jobs if j.name.endswith(kept)]
    # the reference comes along: without it no row has a Δ
    assert [j.name for j in part.jobs] == ["diagnosis/00-reference", "diagnosis/12-budget", "diagnosis/14-semantic-IDs"]
    assert len(part.waiting) == 2  # TIGER's two semantic-ID rows still wait for its grid
    assert only_questions(full, ["QAL"]).waiting == ()
    with pytest.raises(BenchError, match=r"--questions seeds: not a question of this diagnosis \(reference, selection, qal"):
        only_questions(full, ["seeds"])


def test_bad_requests_fail_before_anything_runs(tmp_path: Path) -> None:
    with pytest.raises(BenchError, match="unknown significance test 'ztest'"):
        run_plan(Request(profile="smoke", test="ztest"), ["pop"])
    with pytest.raises(BenchError, match="--seeds must be at least 1"):
        run_plan(Request(profile="smoke", seeds=0), ["pop"])
    with pytest.raises(BenchError, match="'sasrec' is not a model of this command"):
        run_plan(Request(profile="smoke", sets=("sasrec.epochs=1",)), ["pop"])
    assert not any(tmp_path.iterdir())
