"""`bench study` at the smoke profile: every stage, every table and figure, and a report with a verdict per
claim; a finished study has nothing left to run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tests.test_cli import bench


def test_study_writes_every_table_figure_and_the_claims(tmp_path: Path) -> None:
    out = tmp_path / "r"
    result = bench("study", "--profile", "smoke", "--results-dir", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    folder = out / "synthetic"
    for name in ("table1.md", "table1.tex", "table2.md", "table2.tex", "figure3.pdf", "figure3.tex", "training.png",
                 "tuning.md", "REPORT.md", "claims.json"):  # fmt: skip
        assert (folder / name).stat().st_size > 0, name
    report = (folder / "REPORT.md").read_text()
    assert "Smoke profile" in report and "## Claims" in report and "## The floor" in report and "## Provenance" in report
    claims = json.loads((folder / "claims.json").read_text())
    assert [c["key"] for c in claims] == ["a", "b", "c", "d", "e"]
    assert all(c["verdict"] in ("reproduced", "not reproduced", "inconclusive") for c in claims)
    # The terminal ends with the tables in % and one line per claim, after the report is written.
    tail = result.stdout[result.stdout.index("REPORT.md") :].splitlines()
    assert "Table 1" in tail and "Table 2" in tail and any(line.startswith("RCLRec ") for line in tail)
    for c in claims:
        assert any(line.startswith(c["statement"]) and line.rstrip().endswith(c["verdict"]) for line in tail), c
    assert tail[-1] == "Smoke profile: these tables check the wiring end to end; their numbers are not results."
    assert "- Missing: nothing." in report
    # The log is described from split.json, the split's own record beside the results.
    st = json.loads((folder / "split.json").read_text())
    assert f"- {st['users']:,} users, {st['items']:,} items, {st['rows']:,} interactions" in report
    assert f"{100 * st['test_repeat_share']:.1f}% of the test targets" in report
    after = st["test_repeats_after_training"]  # indices into the test targets, each a repeat
    repeat = np.load(folder / "recent" / "seed0.npz")["is_repeat"]
    assert all(repeat[i] for i in after) and f"- {len(after):,} of the {int(repeat.sum()):,} repeat test targets" in report
    tuned = json.loads((folder / "rclrec-no-qal" / "seed0.json").read_text())
    selected = json.loads((folder / "tuning" / "rclrec.json").read_text())["selected"]
    assert all(tuned["config"][k] == v for k, v in selected.items())  # the ablations use RCLRec's selection

    again = bench("study", "--profile", "smoke", "--results-dir", str(out), "--dry-run", cwd=tmp_path)
    assert again.returncode == 0 and again.stdout.count("0 to run") == 5, again.stdout
    assert "== the whole study: 0 job(s) to run, about 0 s wall (0 s of work)" in again.stdout

    # A record of another split is not this log's: the report says what it does not know instead.
    (folder / "split.json").write_text(json.dumps({**st, "fingerprint": "0" * 16}))
    assert bench("study", "--profile", "smoke", "--results-dir", str(out), "--report-only", cwd=tmp_path).returncode == 0
    report = (folder / "REPORT.md").read_text()
    assert f"{st['users']:,} users" not in report and f"- {st['test_targets']:,} test conversion targets; users, items" in report


def test_diagnose_answers_each_question_apart_from_the_tables(tmp_path: Path) -> None:
    out = tmp_path / "r"
    result = bench("diagnose", "rclrec", "--profile", "smoke", "--results-dir", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    folder = out / "synthetic"
    records = json.loads((folder / "diagnosis.json").read_text())
    questions = [r["question"] for r in records]
    for q in ("reference", "budget", "selection", "QAL", "fine-tuning", "semantic IDs", "backbone", "inference reading"):
        assert q in questions
    ran = {r["variant"]: r for r in records if "metrics" in r}
    assert len(ran) == 17 and 0 <= ran["as configured"]["generation"]["prefix_hit_share"] <= 1
    assert {r["question"] for r in records if "metrics" in r} == set(questions)  # every question answered
    assert not (folder / "table1.md").exists()  # never mixed into the tables
    md = (folder / "diagnosis.md").read_text()
    assert "| backbone" in md
    # θ0's own validation score is the row without fine-tuning: the reference's fine-tuning is measured against it
    header, *rows = [[c.strip() for c in line.strip("|").split("|")] for line in md.splitlines() if line.startswith("| ")]
    none = next(r for r in rows if r[1].startswith("none"))
    reference = json.loads((folder / "diagnosis" / "00-reference" / "seed0.json").read_text())
    assert none[header.index("valid N@10")] == f"{100 * reference['fit_extra']['theta0_valid_ndcg10']:.2f}"


def test_diagnose_questions_trains_those_rows_and_still_lists_every_question(tmp_path: Path) -> None:
    out = tmp_path / "r"
    result = bench("diagnose", "--questions", "selection", "--profile", "smoke", "--results-dir", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    folder = out / "synthetic"
    assert sorted(p.name for p in (folder / "diagnosis").iterdir()) == ["00-reference", "01-selection", "02-selection"]
    records = json.loads((folder / "diagnosis.json").read_text())
    assert [r["question"] for r in records if "metrics" in r] == ["reference", "selection", "selection"]
    assert {r["question"] for r in records if r.get("status") == "missing"} >= {"budget", "semantic IDs"}
    md = (folder / "diagnosis.md").read_text()
    selection = next(line for line in md.splitlines() if line.startswith("| selection"))
    assert "[" in selection.split("|")[5], selection  # a Δ with its CI, measured against the reference


def test_a_study_in_pieces_trains_only_the_named_models_and_reports_the_rest_missing(tmp_path: Path) -> None:
    out = tmp_path / "r"
    result = bench("study", "--models", "rclrec", "--profile", "smoke", "--results-dir", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    folder = out / "synthetic"
    assert (folder / "tuning" / "rclrec.json").exists() and not (folder / "tuning" / "sasrec.json").exists()
    assert (folder / "rclrec-no-qal" / "seed0.json").exists() and (folder / "sweep" / "rclrec" / "k=6").is_dir()
    assert (folder / "recent" / "seed0.json").exists()  # the models without a grid always run
    assert not (folder / "sasrec").exists() and not (folder / "tuning" / "tiger").exists()
    report = (folder / "REPORT.md").read_text()
    missing = next(line for line in report.splitlines() if line.startswith("- Missing:"))
    assert "tuning grids (seed 0): 28 job(s) missing" in missing and "ablations" not in missing, missing  # 7 × 4
    assert "Table 1 models, tuned: 7 job(s) missing" in missing, missing  # RCLRec's tuned run is there
    # The protocol counts the table runs (one level down) apart from every finished job (grid, sweep deeper)
    profile = next(line for line in report.splitlines() if line.startswith("- Profile"))
    table_runs, all_jobs = len(list(folder.glob("*/seed*.json"))), len(list(folder.rglob("seed*.json")))
    assert all_jobs > table_runs > 0
    assert f"{table_runs} finished Table 1 and 2 run(s), {all_jobs} finished job(s) in all" in profile, profile
    # The dry run of the whole study shows RCLRec's tuned runs (and its ablations and sweep) as finished
    # while the other models, still untuned, are to run; none is "blocked" by a result of another config.
    dry = bench("study", "--profile", "smoke", "--results-dir", str(out), "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0 and "blocked" not in dry.stdout, dry.stdout
    tuned_rows = [line for line in dry.stdout.splitlines() if line.startswith(("rclrec seed", "rclrec-", "sweep/"))]
    assert tuned_rows and all("finished" in line for line in tuned_rows), tuned_rows
    assert any(line.startswith("tuning/sasrec/") and "to run" in line for line in dry.stdout.splitlines())
    # SASRec's seed 0 will be its selected grid point's run: listed apart, not counted twice; RCLRec's is done.
    again = next(line for line in dry.stdout.splitlines() if line.startswith("(and ") and "sasrec seed0" in line)
    assert "rclrec seed0" not in again and not any(line.startswith("sasrec seed0") for line in dry.stdout.splitlines())
    bad = bench("study", "--models", "rclrec,nosuch", "--profile", "smoke", "--results-dir", str(out), cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "nosuch" in bad.stderr


def test_a_models_tuned_runs_start_as_soon_as_its_own_grid_has_ended(tmp_path: Path) -> None:
    """PBAT's grid is queued before HSTU's; PBAT's seeds are planned (seed 0 reusing its selected trial) the
    moment its fourth point ends, not after HSTU's grid. A rerun finds both grids done and plans it all."""
    out = tmp_path / "r"
    args = ("study", "--models", "pbat,hstu", "--profile", "smoke", "--seeds", "2", "--workers", "1", "--results-dir", str(out))
    result = bench(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "study: Table 1 models, tuned: starts for hstu, pbat as soon as their grids have ended" in lines
    assert "study: ablations, tuned: skipped (rclrec is not among --models)" in lines
    ended = lines.index("study: pbat's grid has ended: Table 1 models, tuned: 2 job(s)")
    reused = next(i for i, line in enumerate(lines) if line.startswith("✓ pbat seed0: the same run as tuning/pbat/"))
    hstu = [i for i, line in enumerate(lines) if line.startswith("✓ tuning/hstu/")]
    assert len(hstu) == 4 and ended < reused < hstu[0], result.stdout
    assert (out / "synthetic" / "pbat" / "seed1.json").exists() and (out / "synthetic" / "hstu" / "seed1.json").exists()
    again = bench(*args, cwd=tmp_path)
    assert again.returncode == 0 and "study: Table 1 models, tuned: 4 job(s)\n" in again.stdout, again.stdout
    assert "grid has ended" not in again.stdout and again.stdout.count("finished earlier, skipped") == 4 + 8 + 4  # pop, recent; grids; seeds


def test_rclrecs_seeds_open_three_plans_at_once_and_each_job_runs_once(tmp_path: Path) -> None:
    """When RCLRec's grid ends, its seeds are in Table 1's plan and in the ablations' (and the sweep point at
    its own k reuses them): each runs once, on two workers as in one process."""
    for workers in ("2", "1"):
        out = tmp_path / workers
        result = bench("study", "--models", "rclrec", "--profile", "smoke", "--seeds", "2", "--workers", workers,
                       "--results-dir", str(out), cwd=tmp_path)  # fmt: skip
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert "study: rclrec's grid has ended: Table 1 models, tuned: 2 job(s); ablations, tuned: 8 job(s); curriculum-length sweep: 12 job(s)" in lines
        trained = [line.split(":")[0] for line in lines if line.startswith(("✓ rclrec", "✓ sweep/")) and " R@10 " in line]
        assert len(trained) == len(set(trained)) == 1 + 6 + 10, trained  # seed 1; 3 variants × 2; 5 sweep points × 2
        assert "✓ rclrec seed1" in trained
        # The sweep point at RCLRec's own k = 4 waited for seed 1's run instead of training it again.
        assert "✓ sweep/rclrec/k=4 seed1: the same run as rclrec seed1, reused" in lines


def test_a_tuned_run_refused_when_its_grid_ends_lets_the_other_jobs_finish_then_exits_2(tmp_path: Path) -> None:
    """A result of another config sits where PBAT's tuned seed 1 goes. Its plan is made only when PBAT's grid
    has ended, mid-stream: HSTU's grid, queued after, still runs, and the command then stops with one line."""
    out = tmp_path / "r"
    planted = out / "synthetic" / "pbat" / "seed1.json"
    planted.parent.mkdir(parents=True)
    planted.write_text(json.dumps({"split_fingerprint": "x", "config_hash": "y"}))
    result = bench("study", "--models", "pbat,hstu", "--profile", "smoke", "--seeds", "2", "--workers", "1",
                   "--results-dir", str(out), cwd=tmp_path)  # fmt: skip
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0, result.stderr
    assert f"{planted}: holds a result for another split" in result.stderr, result.stderr
    assert len(list((out / "synthetic" / "tuning" / "hstu").glob("*/seed0.json"))) == 4
    assert (out / "synthetic" / "hstu" / "seed1.json").exists()  # HSTU's own tuned runs were not refused


def test_the_report_lists_every_finished_grid_point_before_the_grid_is_complete(tmp_path: Path) -> None:
    """One of RCLRec's four points is finished: REPORT.md's Tuning section shows it (criterion, both stages'
    epochs, the note that fine-tuning never beat θ0) and selects nothing yet."""
    from bench import study
    from bench.plan import Request, tune_plan

    req = Request(dataset="synthetic", profile="smoke", results_dir=tmp_path / "r")
    plan = tune_plan(req, ["rclrec"])
    job = plan.jobs[1]
    extra = {"epochs_run": 3, "epoch_cap": 3, "ended_at_cap": True, "sft_below_theta0": True, "theta0_valid_ndcg10": 0.5,
             "pretrain": {"best_epoch": 1, "extra": {"epochs_run": 2, "epoch_cap": 9, "theta0": "trained"}}}  # fmt: skip
    plan.json_path(job).parent.mkdir(parents=True)
    plan.json_path(job).write_text(json.dumps({"model": job.name, "seed": 0, "valid_ndcg@10": 0.25, "best_epoch": 2,
                                               "train_seconds": 7.0, "fit_extra": extra}))  # fmt: skip
    section = study._tuning_section(req, study.plans(req, dry_run=True)[1][1])
    text = "\n".join(section)
    assert "RCLRec 1/4" in text and "SASRec 0/4" in text
    row = next(line for line in text.splitlines() if line.startswith("| RCLRec"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    point = ", ".join(f"{k}={v}" for k, v in job.overrides.items())
    assert cells == ["RCLRec", point, "25.00", "θ0 2/2/9 + 3/3/3", "7",
                     "ended at the cap: best epoch 3 of 3; fine-tuning below θ0 (25.00 < 50.00)", ""]  # fmt: skip


def test_provenance_counts_what_differs_between_jobs_instead_of_listing_whole_records() -> None:
    from bench.study import _provenance_section

    def run(model: str, versions: dict[str, str], cpu: str, train: float) -> dict:
        return {"model": model, "seed": 0, "config_hash": "h", "device": "cpu", "threads": 1, "train_seconds": train,
                "eval_seconds": 0.25, "versions": {"commit": "abc", "python": "3.11.7", **versions},
                "hardware": {"cores": 2, "cpu": cpu}}  # fmt: skip

    runs = [run("sasrec", {"torch": "2.13.0", "recbole": "1.2.1"}, "EPYC", 1234.4),
            run("tiger", {"torch": "2.13.0"}, "EPYC", 5.0), run("hstu", {"torch": "2.14.1"}, "Xeon", 61.0)]  # fmt: skip
    lines = _provenance_section(runs)
    assert "- Packages: python 3.11.7; recbole 1.2.1 (1 of 3 jobs); torch 2.13.0 (2 of 3 jobs), 2.14.1 (1 of 3 jobs)." in lines
    assert "- Hardware: cores 2, cpu EPYC (2 of 3 jobs); cores 2, cpu Xeon (1 of 3 jobs)." in lines
    table = "\n".join(lines)
    assert "| 1234 " in table and "| 5.0 " in table and "| 0.2 " in table  # own train and eval seconds per job


def test_the_log_is_named_by_the_path_most_runs_read_whichever_run_sorts_first() -> None:
    from bench.study import _log_section

    def run(data: str | None) -> dict:
        return {"data": data, "n_targets": 4, "dataset_config": {"config": "csv"}, "split_fingerprint": "f"}

    lines = _log_section([run("/elsewhere/shop"), run("../shared/shop"), run("../shared/shop")], None)
    assert "Data: `../shared/shop` (dataset config `csv`), split fingerprint `f`; 1 of 3 runs read it from another path." in lines
    assert "Data: `x` (dataset config `csv`), split fingerprint `f`." in _log_section([run("x"), run("x")], None)
    assert _log_section([run(None)], None)[2].startswith("Data: the embedded synthetic log (")


def test_the_floor_splits_repeat_targets_by_whether_the_user_trained_on_the_item() -> None:
    """Four test targets: 0 and 1 repeat an item of the user's training events, 2 repeats one the user touched
    only after them, 3 is new. A model that finds 0 and 1 at rank 1 and misses 2 shows 100 against 0."""
    from bench import study
    from bench.metrics import per_target
    from bench.report import ModelResults

    def model(name: str, ranks: list[float]) -> ModelResults:
        pt = per_target(np.array(ranks))
        return ModelResults(name, name.title(), 0, [0], [{m: float(v.mean()) for m, v in pt.items()}], pt,
                            np.array([True, True, True, False]), [])  # fmt: skip

    after = np.array([False, False, True, False])
    recent, memo = model("recent", [1, 3, 2, 50]), model("memo", [1, 1, 40, 2])
    text = "\n".join(study._floor_section([recent, memo], "wilcoxon", after))
    table = text[text.index("only after them") :].splitlines()
    rows = {cells[0]: [float(c) for c in cells[1:]] for line in table[2:]
            if line.startswith("| ") and (cells := [c.strip() for c in line.strip("|").split("|")])[0] != "model"}  # fmt: skip
    # Recall@10 then NDCG@10, in training then after; NDCG@10 of rank r is 1 / log2(r + 1): 3 → 50, 2 → 63.09
    assert rows == {"Recent": [100.0, 75.0, 100.0, 63.09], "Memo": [100.0, 100.0, 0.0, 0.0]}
    assert "only after them" in text
    # Without the split's record (or with no such target) the table is left out.
    assert "only after them" not in "\n".join(study._floor_section([recent, memo], "wilcoxon", None))


def test_the_report_says_when_generative_runs_were_trained_on_different_semantic_ids(tmp_path: Path) -> None:
    from bench.study import _semantic_ids_lines

    def job(name: str, ids: dict | None) -> tuple[Path, dict]:
        return tmp_path / name / "seed0.json", {"generation": None if ids is None else {"semantic_ids": ids}}

    same = [job("tiger", {"fingerprint": "a" * 16}), job("rclrec", {"fingerprint": "a" * 16}), job("pop", None)]
    files, jobs = zip(*same)
    assert _semantic_ids_lines(tmp_path, list(files), list(jobs)) == [
        f"Semantic IDs: every generative run (2) was trained on the same codes (fingerprint `{'a' * 16}`).", ""]
    mixed = [*same[:2], job("gear", {"distinct_prefixes": 18562, "collision_rate": 0.53})]  # recorded before fingerprints
    files, jobs = zip(*mixed)
    lines = _semantic_ids_lines(tmp_path, list(files), list(jobs))
    assert lines[0].startswith("**Semantic IDs differ between runs** (2 sets of codes)")
    assert f"- fingerprint `{'a' * 16}`: tiger/seed0, rclrec/seed0" in lines
    assert "- recorded before fingerprints: 18,562 distinct prefixes: gear/seed0" in lines
    assert _semantic_ids_lines(tmp_path, [files[0]], [{"generation": None}]) == []
    # A record from before fingerprints with the statistics of a fingerprinted set is that set, as the runner
    # matches it when deciding whether a finished run is on the codes of today (runner.same_ids).
    stats = {"distinct_prefixes": 18562, "collision_rate": 0.53}
    matched = [job("gear", stats), job("mbgen", {**stats, "fingerprint": "c" * 16}), job("hstu", None)]
    files, jobs = zip(*matched)
    assert _semantic_ids_lines(tmp_path, list(files), list(jobs)) == [
        f"Semantic IDs: every generative run (2) was trained on the same codes (fingerprint `{'c' * 16}`; 1 run(s) "
        "recorded before fingerprints match it on every statistic).", ""]
    other = [*matched[:2], job("tiger", {**stats, "collision_rate": 0.54})]  # one digit apart: other codes
    files, jobs = zip(*other)
    lines = _semantic_ids_lines(tmp_path, list(files), list(jobs))
    assert lines[0].startswith("**Semantic IDs differ between runs** (2 sets of codes)")
    assert (f"- fingerprint `{'c' * 16}`; 1 run(s) recorded before fingerprints match it on every statistic: "
            "gear/seed0, mbgen/seed0") in lines
    assert "- recorded before fingerprints: 18,562 distinct prefixes: tiger/seed0" in lines
    # With the fit's statistics, the line reports them (SPEC §2): 2 of 5 items collide, 2 levels.
    full = {"fingerprint": "b" * 16, "items": 5, "distinct_prefixes": 4, "collision_rate": 0.4, "largest_collision_group": 2,
            "level0_utilisation": 1.0, "level0_entropy": 0.5, "level1_utilisation": 0.75, "level1_entropy": 0.25}  # fmt: skip
    assert _semantic_ids_lines(tmp_path, [files[0]], [{"generation": {"semantic_ids": full}}])[0] == (
        f"Semantic IDs: every generative run (1) was trained on the same codes (fingerprint `{'b' * 16}`): 5 items in 4 "
        "distinct 2-token prefixes, 40.0% of the items in a prefix another item shares (the largest group 2 items, told "
        "apart by the last token); per level, codebook utilisation 100%, 75% and normalised entropy 0.50, 0.25.")


def test_the_report_says_when_runs_of_one_seed_were_fine_tuned_from_different_theta0s(tmp_path: Path) -> None:
    # Table 1's RCLRec and its ablations of one seed share θ0 through the cache; one trained again (another
    # CPU) is another θ0, and the report must say which runs come from which.
    from bench.study import _first_stage_lines
    from tests.conftest import REPO

    committed = REPO / "results" / "tmall-2014-brands"
    names = ["rclrec/seed0", "rclrec-no-rcpm/seed0", "rclrec/seed1", "hstu/seed0", "tuning/rclrec/learning_rate=0.003,dropout=0.1/seed0"]
    jobs = [json.loads((committed / f"{n}.json").read_text()) for n in names]
    files = [tmp_path / f"{n}.json" for n in names]
    assert _first_stage_lines(tmp_path, files, jobs) == [
        "θ0: the 2 table and sweep runs that share RCLRec's θ0 (one per seed and pre-training config: 1) were each "
        "fine-tuned from that same θ0 (equal training records).", ""]  # the trial keeps its own
    jobs[1]["fit_extra"]["pretrain"]["extra"]["train_loss"][-1] += 1e-12  # the ablation's θ0, trained again
    lines = _first_stage_lines(tmp_path, files, jobs)
    assert lines[0].startswith("**Runs that should share a first stage do not**")
    assert lines[2:] == ["- rclrec/seed0; rclrec-no-rcpm/seed0", ""]
    assert _first_stage_lines(tmp_path, files[3:4], jobs[3:4]) == []  # no model with a first stage: no line
    assert _first_stage_lines(tmp_path, files[2:4], jobs[2:4]) == []  # one run of each stage: nothing shared yet
