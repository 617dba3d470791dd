"""``bench study``: the whole paper on one log as one resumable command, and its reproduction report.

Stages, each a plan (finished jobs are skipped, so a rerun resumes): the models without a tuning grid
(pop, recent) → every Table 1 model's tuning grid (seed 0, equal budget) → every Table 1 model with its
selection × seeds → RCLRec's ablation variants with its selection → the curriculum-length sweep → Table 1,
Table 2, Figure 3 and ``REPORT.md``. They run as one stream on the executor: a model's later stages start
as soon as its own grid has ended, ahead of grid points not started yet. A partial study reports what it
has and lists what is missing. ``models`` runs the study's part for some Table 1 models (their grids and
tuned seeds, and RCLRec's ablations and sweep when it is one of them), so a long study can be computed in
pieces, the models that decide the claims first; the report always covers the whole study.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tabulate import tabulate

from bench import claims as claims_mod
from bench import diagnosis as diagnosis_mod
from bench import figure, report, runner, tuning
from bench.config import Configs, from_dict
from bench.data.preprocess import describe_preparation
from bench.durations import duration
from bench.errors import BenchError
from bench.io import result_files, write_json, write_text
from bench.plan import Job, Plan, Request, ablate_plan, diagnose_plan, run_plan, selection_path, sweep_plan, tune_plan
from bench.recommender import resolve
from bench.semantic_ids import same_codes

K_VALUES = "1,2,3,4,5,6"


def plans(req: Request, dry_run: bool = False, models: Sequence[str] | None = None) -> list[tuple[str, Plan | None, str]]:
    """The study's stages as (name, plan or None, note). A stage that needs tuning selections not made yet
    is planned untuned under ``dry_run`` (to count its jobs) and left out otherwise, with a note. With
    ``models``, only those Table 1 models are trained; the models without a grid (seconds each) always run."""
    configs = Configs(req.config_dirs)
    folder = req.results_dir / configs.dataset(req.dataset, req.profile, req.data, req.name).name
    table1 = configs.models("table1")
    names = [e.name for e in table1]
    unknown = [m for m in models or () if m not in names]
    if unknown:
        raise BenchError(f"--models {unknown[0]}: not a Table 1 model of the study ({', '.join(names)})")
    plain = [e.name for e in table1 if e.tune_owner is None]
    tuned = [e.name for e in table1 if e.tune_owner is not None and (models is None or e.name in models)]
    selected = [m for m in tuned if selection_path(folder, configs.model(m).tune_owner).exists()]
    untuned, tuned_req = dataclasses.replace(req, tuned=False), dataclasses.replace(req, tuned=True)
    out: list[tuple[str, Plan | None, str]] = [("models without a grid", run_plan(untuned, plain), ""),
                                               ("tuning grids (seed 0)", tune_plan(untuned, tuned) if tuned else None, "")]  # fmt: skip
    missing = sorted(set(tuned) - set(selected))
    later = untuned if dry_run and missing else tuned_req
    note = f"configurations chosen by tuning, not yet made for {', '.join(missing)}" if missing else ""
    trained = tuned if dry_run else selected
    table1_plan = run_plan(later, trained) if trained else None
    if table1_plan is not None and dry_run and missing and selected:
        # A model whose selection is made is shown with it (its finished seeds as finished), the others
        # untuned, in Table 1's order: planning them all untuned showed finished tuned runs as "blocked".
        chosen = {j.label: j for j in run_plan(tuned_req, selected).jobs}
        table1_plan = dataclasses.replace(table1_plan, jobs=tuple(chosen.get(j.label, j) for j in table1_plan.jobs))
    out.append(("Table 1 models, tuned", table1_plan, note))
    has_rclrec = "rclrec" in trained
    why_not = "" if has_rclrec else note if "rclrec" in tuned else "rclrec is not among --models"
    rcl = tuned_req if "rclrec" in selected else later
    out.append(("ablations, tuned", ablate_plan(rcl, "rclrec") if has_rclrec else None, why_not))
    out.append(("curriculum-length sweep", sweep_plan(rcl, "rclrec", "k", K_VALUES) if has_rclrec else None, ""))
    return out


def run(req: Request, device: torch.device | None, executor: dict[str, Any], say: Callable[[str], None] = runner.say,
        models: Sequence[str] | None = None) -> tuple[list[str], Path]:  # fmt: skip
    """The stages as one stream of jobs on the executor, then the report of the whole study. Returns the
    failed jobs and REPORT.md's path.

    A model's tuned seeds (and, for RCLRec, its ablations and sweep) need only its own grid's selection,
    so they start as soon as that grid has ended, not after every model's grid: a worker never idles
    behind another model's last grid point (on a taobao-sized log, one TIGER point is hours). Each job is
    a pure function of its split, config and seed, so the order changes no number."""
    grid = plans(req, models=models)[1][1]
    if grid is not None:  # grids finished in an earlier session: select now, so their tuned runs are planned
        for model in sorted({job.model for job in grid.jobs}):
            if all(path.exists() for path in _points(grid, model)):
                tuning.select(_only(grid, model))
    untuned = _untuned(grid) if grid is not None else []
    first = []
    for stage, (name, plan, note) in enumerate(plans(req, models=models)):
        # The models whose part of this stage waits for their grid: all for their seeds, RCLRec for the rest.
        waits = [] if stage < 2 else untuned if stage == 2 else [m for m in untuned if m == "rclrec"]
        later = f"{', '.join(waits)} as soon as {'its grid has' if len(waits) == 1 else 'their grids have'} ended"
        if plan is not None:
            say(f"study: {name}: {len(plan.jobs)} job(s)" + (f", then those of {later}" if waits else ""))
            first.append(plan)
        elif waits:
            say(f"study: {name}: starts for {later}")
        else:
            say(f"study: {name}: skipped ({note or 'nothing to run'})")

    ended: set[Path] = set()  # the jobs that ended in this session, finished or failed

    def then(plan: Plan, job: Job) -> list[Plan]:
        """After a grid point: once the model's whole grid has ended, its selection and the plans it opens."""
        ended.add(plan.json_path(job))
        if plan.command != "tune" or not all(p.exists() or p in ended for p in _points(plan, job.model)):
            return []
        tuning.select(_only(plan, job.model))
        if not selection_path(plan.folder, job.model).exists():  # a trial failed: nothing selected
            return []
        opened = [(name, later) for name, later, _ in plans(req, models=[job.model])[2:] if later is not None]
        say(f"study: {job.model}'s grid has ended: " + "; ".join(f"{name}: {len(later.jobs)} job(s)" for name, later in opened))
        return [later for _, later in opened]

    failed = runner.run(first, device, then=then, **executor) if first else []
    folder = plans(req)[0][1].folder
    return failed, write(folder, req)


def _made_earlier(plan: Plan, job: Job, planned: set[Path], tuning_now: set[str]) -> bool:
    """Whether a study's earlier stage makes this job's run, so a dry run counts it once: the same job
    (RCLRec's seeds in the ablations), one it reuses (the sweep point at RCLRec's own k), or, for a model
    still being tuned, seed 0, its selected grid point's run (planned untuned, since no point is selected)."""
    path = plan.json_path(job)
    source = plan.reuse_path(job)
    return not path.exists() and (path in planned or (source is not None and source in planned and not source.exists())
                                  or (plan.command == "run" and job.seed == 0 and job.model in tuning_now))  # fmt: skip


def _untuned(grid: Plan) -> list[str]:
    """The models of ``grid`` whose selection is not made yet, sorted."""
    return sorted({job.model for job in grid.jobs if not selection_path(grid.folder, job.model).exists()})


def _only(grid: Plan, model: str) -> Plan:
    return dataclasses.replace(grid, jobs=tuple(job for job in grid.jobs if job.model == model))


def _points(grid: Plan, model: str) -> list[Path]:
    """The result files of ``model``'s grid points."""
    return [grid.json_path(job) for job in grid.jobs if job.model == model]


def summary(folder: Path) -> str:
    """The end of a study on the terminal: Table 1 and Table 2 in % (those that exist) and each claim's
    verdict, read back from the files :func:`write` wrote, so the terminal and REPORT.md cannot disagree."""
    parts, smoke = [], False
    for name, title in (("table1", "Table 1"), ("table2", "Table 2")):
        stats = folder / f"{name}_stats.json"
        if stats.exists():
            smoke |= bool(json.loads(stats.read_text()).get("smoke"))
            parts.append(f"{title}\n{report.summary(stats, banner=False)}")
    claims = folder / "claims.json"
    if claims.exists():
        rows = [[c["statement"], c["verdict"]] for c in json.loads(claims.read_text())]
        parts.append(tabulate(rows, headers=["claim", "verdict"], tablefmt="simple", disable_numparse=True))
    if smoke:
        parts.append(report.SMOKE)
    return "\n\n".join(parts)


def dry_run(req: Request, workers: int, models: Sequence[str] | None = None) -> str:
    """Each stage's dry run, then the whole study's. The stages run as one stream (a model's later stages
    start as soon as its grid has ended), so the study's wall is its work over the workers it can keep busy."""
    parts, found = [], []
    stages: set[Hashable] = set()  # RCLRec's θ0s, counted once over the whole study: its grid, seeds, ablations, sweep
    planned: set[Path] = set()  # the result files of the jobs shown so far
    tuning_now: set[str] = set()  # the models whose grid has no selection yet
    for name, plan, note in plans(req, dry_run=True, models=models):
        parts.append(f"== {name}{f' ({note})' if note else ''}")
        if plan is None:
            parts.append("nothing to run")
            continue
        if plan.command == "tune":
            tuning_now = set(_untuned(plan))
        again = [job for job in plan.jobs if _made_earlier(plan, job, planned, tuning_now)]
        planned.update(plan.json_path(job) for job in plan.jobs)
        found.append(runner.estimate(dataclasses.replace(plan, jobs=tuple(j for j in plan.jobs if j not in again)), workers, stages))
        parts.append(found[-1].text)
        if again:
            parts.append(f"(and {len(again)} job(s) that are runs of an earlier stage, not counted again: "
                         f"{', '.join(job.label for job in again)})")  # fmt: skip
    to_run, unknown = sum(e.to_run for e in found), sum(e.unknown for e in found)
    work = sum(e.work_seconds for e in found)
    total = f"about {duration(work / max(1, min(workers, to_run)))} wall ({duration(work)} of work)"
    if unknown == to_run and to_run:
        total = "no estimate yet"
    parts.append(f"== the whole study: {to_run} job(s) to run, {total}"
                 + (f", plus {unknown} job(s) of models that never ran here" if unknown and unknown < to_run else ""))  # fmt: skip
    return "\n\n".join(parts)


# ----------------------------------------------------------------------------------------- report


def _claims_model(r: report.ModelResults) -> claims_mod.Model:
    return claims_mod.Model(r.name, r.display, r.per_target, dict(zip(r.seeds, r.per_seed)))


def _models(results: list[report.ModelResults]) -> dict[str, claims_mod.Model]:
    return {r.name: _claims_model(r) for r in results}


def _safe(call: Callable[[], Any], default: Any) -> Any:
    try:
        return call()
    except BenchError:
        return default


def write(folder: Path, req: Request) -> Path:
    """REPORT.md (and the tables and figures it links) from whatever results the folder holds: a function of
    the result files alone, so the committed reports regenerate byte for byte."""
    test = req.test
    written = {
        "table1": _safe(lambda: report.table1(folder, test), None),
        "table2": _safe(lambda: report.table2(folder, "rclrec", test), None),
        "figure3": _safe(lambda: figure.figure3(folder, "rclrec", "k", [int(v) for v in K_VALUES.split(",")]), None),
        "training": _safe(lambda: figure.training_curves(folder), None),
        "tuning": {"md": tuning.write_summary(folder)} if any(folder.glob("tuning/*.json")) else None,
    }
    t1 = _safe(lambda: report.collect(folder, lambda r: r.get("table") == "table1")[0], [])
    t2 = _safe(lambda: report.collect(folder, lambda r: r.get("table") == "table2" or r["model"] == "rclrec")[0], [])
    sweep_runs = _safe(lambda: report.collect(folder / "sweep" / "rclrec", lambda r: True)[0], [])
    sweep = {int(r.name.rsplit("=", 1)[1]): _claims_model(r) for r in sweep_runs}
    found = {r.name: r for r in t1 + t2}
    claims = claims_mod.check(_models(t1), _models(t2), sweep, test)
    files = result_files(folder, "**/")  # every job: the table runs one level down, grids, sweep, diagnosis deeper
    jobs = [json.loads(f.read_text()) for f in files]
    runs = [r for f, r in zip(files, jobs) if f.parent.parent == folder]
    profile = next((r["profile"] for r in runs), req.profile)
    req = dataclasses.replace(req, profile=profile)  # the runs' profile, whatever the command said
    stages = plans(req, dry_run=True)
    smoke = profile == "smoke"
    lines = [f"# Reproduction report: RCLRec on {folder.name}", ""]
    if smoke:
        lines += [f"> **{report.SMOKE}**", ""]
    record = _split_record(folder, runs[0]["split_fingerprint"]) if runs else None
    lines += _log_section(runs, record) + _semantic_ids_lines(folder, files, jobs) + _first_stage_lines(folder, files, jobs)
    lines += _protocol_section(req, stages, runs, found, len(jobs))
    lines += ["## Claims", "", f"Test: {test}, α = 0.05; effects in points of the metric named, with a 95% paired "
              "bootstrap CI over targets (2,000 resamples) and the range over seeds.", ""]  # fmt: skip
    lines += [tabulate([[c.statement, c.paper, c.ours, c.effect, c.p, f"**{c.verdict}**"] for c in claims],
                       headers=["claim", "paper", "ours", "effect", "Holm p", "verdict"], tablefmt="github"), ""]  # fmt: skip
    lines += ["Rules:", "", *[f"- ({c.key}) {c.rule}." for c in claims], ""]
    lines += _floor_section(t1, test, _after_training(record, runs[0]["n_targets"]) if record else None)
    lines += _tuning_section(req, stages[1][1])
    if (folder / "diagnosis").is_dir():  # its own heading becomes a section of this report
        # Regenerated from the diagnosis runs like every table, so diagnosis.md cannot drift from them either;
        # tuned as the study runs it (`diagnose --tuned`) once RCLRec's selection is made.
        tuned = selection_path(folder, "rclrec").exists()
        written["diagnosis"] = _safe(lambda: diagnosis_mod.write(diagnose_plan(dataclasses.replace(req, tuned=tuned))), None)
    diagnosis = folder / "diagnosis.md"
    if written.get("diagnosis"):
        lines += ["## Diagnosis", "", *diagnosis.read_text().split("\n", 2)[2:], ""]
    else:
        lines += ["## Diagnosis", "", "Not run: `python -m bench diagnose rclrec --tuned` (with this command's options; once RCLRec's "
                  "selection is made, so that every variant starts from it) answers, "
                  "with variants kept out of the tables, how much budget, selection, the quality-aware loss and the "
                  "semantic IDs explain.", ""]  # fmt: skip
    lines += _training_section(t1 + [r for r in t2 if r.name != "rclrec"], written["training"])
    lines += _provenance_section(jobs)
    lines += ["## Files", "", *[f"- {kind}: " + ", ".join(f"[{p.name}]({p.name})" for p in paths.values())
                                for kind, paths in written.items() if paths], ""]  # fmt: skip
    path = folder / "REPORT.md"
    write_text(path, "\n".join(lines))
    write_json(folder / "claims.json", [c.to_dict() for c in claims])
    return path


def _log_section(runs: list[dict[str, Any]], st: dict[str, Any] | None) -> list[str]:
    """``st``: this split's record (:func:`_split_record`), or None when there is none."""
    if not runs:
        return ["## The log", "", "No finished runs yet.", ""]
    r = runs[0]
    prep = r.get("preparation") or {}
    n = r["n_targets"]
    # Runs on other machines or checkouts record other paths to the same log (the split fingerprint says it
    # is the same): name the one most runs read, so the report does not change with whichever run sorts first.
    paths = Counter(run.get("data") for run in runs).most_common()
    data = f"`{paths[0][0]}`" if paths[0][0] else "the embedded synthetic log"
    others = sum(count for _, count in paths[1:])
    elsewhere = f"; {others} of {len(runs)} runs read it from another path" if others else ""
    out = ["## The log", "", f"Data: {data} (dataset config `{r['dataset_config']['config']}`), split "
           f"fingerprint `{r['split_fingerprint']}`{elsewhere}.", ""]  # fmt: skip
    if st is not None:
        rows = ", ".join(f"{b} {st[f'rows_{b}']:,}" for b in ("click", "fav", "cart", "buy"))
        out += [f"- {st['users']:,} users, {st['items']:,} items, {st['rows']:,} interactions ({rows}; "
                f"{100 * st['conversion_share']:.1f}% conversions), {st['train_rows']:,} of them training events",
                f"- {st['valid_targets']:,} validation and {st['test_targets']:,} test conversion targets; "
                f"{100 * st['test_repeat_share']:.1f}% of the test targets (validation: "
                f"{100 * st['valid_repeat_share']:.1f}%) repeat an item of the user's own history",
                f"- a target has at least {st['min_history']} earlier interactions, and models see the last "
                f"{st['max_history']}; item features: "
                f"{', '.join(st['item_features']) or 'none'}; user features: {', '.join(st['user_features']) or 'none'}"]  # fmt: skip
        if runner.REPEATS_AFTER_TRAINING in st:
            after, repeats = len(st[runner.REPEATS_AFTER_TRAINING]), round(st["test_repeat_share"] * st["test_targets"])
            out += [f"- {after:,} of the {repeats:,} repeat test targets ({100 * after / max(1, repeats):.1f}%) repeat an "
                    "item the user touched only after the training part (the validation target or the events after "
                    "it, which no model trains on); no repeat validation target does"]  # fmt: skip
    else:
        out += [f"- {n:,} test conversion targets; users, items and interactions are not recorded here "
                f"(`{runner.SPLIT_RECORD}` of this split is written by any command that trains on it)"]  # fmt: skip
    out += [f"- {line}" for line in describe_preparation(prep)] + [""]
    return out


def _semantic_ids_lines(folder: Path, files: list[Path], jobs: list[dict[str, Any]]) -> list[str]:
    """Which semantic IDs the generative models' runs were trained on: one set, or a warning naming the runs
    of each set (their codes depend on the BLAS build and CPU that fitted them, :mod:`bench.semantic_ids`).
    Runs are grouped as the runner matches a finished result to the codes (:func:`~bench.semantic_ids.same_codes`):
    a run recorded before fingerprints joins the set whose statistics it shares, all of them."""
    runs = [(str(f.parent.relative_to(folder) / f.stem), used) for f, r in zip(files, jobs)
            if (used := (r.get("generation") or {}).get("semantic_ids"))]  # fmt: skip
    if not runs:
        return []
    sets: list[dict[str, Any]] = []  # one record per set of codes, a fingerprinted one where the set has it
    set_of = [0] * len(runs)  # each run's set
    for j in sorted(range(len(runs)), key=lambda j: "fingerprint" not in runs[j][1]):  # fingerprinted runs first
        used = runs[j][1]
        i = next((i for i, known in enumerate(sets) if same_codes(used, known)), len(sets))
        if i == len(sets):  # codes no earlier run had
            sets.append(used)
        set_of[j] = i
    names: list[list[str]] = [[] for _ in sets]
    legacy = [0] * len(sets)  # runs recorded before fingerprints, in a set that has one
    for (name, used), i in zip(runs, set_of):  # file order
        names[i].append(name)
        legacy[i] += "fingerprint" not in used and "fingerprint" in sets[i]

    def label(i: int, prefixes: bool = True) -> str:
        matched = f"; {legacy[i]} run(s) recorded before fingerprints match it on every statistic" if legacy[i] else ""
        return _codes_label(sets[i], prefixes) + matched

    if len(sets) == 1:
        summary = _codes_summary(sets[0])
        return [f"Semantic IDs: every generative run ({len(names[0])}) was trained on the same codes "
                f"({label(0, prefixes=not summary)}){summary}.", ""]  # fmt: skip
    out = [f"**Semantic IDs differ between runs** ({len(sets)} sets of codes): those runs are not on equal footing.", ""]
    return out + [f"- {label(i)}: {', '.join(group)}" for i, group in enumerate(names)] + [""]


def _codes_label(used: dict[str, Any], prefixes: bool = True) -> str:
    """How a set of semantic IDs is named: its fingerprint, or for a record from before fingerprints, that
    (with its distinct prefixes, unless the line gives them anyway)."""
    if "fingerprint" in used:
        return f"fingerprint `{used['fingerprint']}`"
    return "recorded before fingerprints" + (f": {used['distinct_prefixes']:,} distinct prefixes" if prefixes else "")


def _codes_summary(stats: dict[str, Any]) -> str:
    """The collision and codebook statistics of one set of semantic IDs (as its runs recorded them), which
    SPEC §2 asks to report; empty for a record without them."""
    if not all(k in stats for k in ("items", "distinct_prefixes", "collision_rate", "largest_collision_group")):
        return ""
    levels = sum(1 for k in stats if k.startswith("level") and k.endswith("_utilisation"))
    out = (f": {stats['items']:,} items in {stats['distinct_prefixes']:,} distinct {levels}-token prefixes, "
           f"{100 * stats['collision_rate']:.1f}% of the items in a prefix another item shares (the largest group "
           f"{stats['largest_collision_group']:,} items, told apart by the last token)")  # fmt: skip
    if levels and all(f"level{i}_entropy" in stats for i in range(levels)):
        utilisation = ", ".join(f"{100 * stats[f'level{i}_utilisation']:.0f}%" for i in range(levels))
        entropy = ", ".join(f"{stats[f'level{i}_entropy']:.2f}" for i in range(levels))
        out += f"; per level, codebook utilisation {utilisation} and normalised entropy {entropy}"
    return out


def _first_stage_lines(folder: Path, files: list[Path], jobs: list[dict[str, Any]]) -> list[str]:
    """Whether the table and sweep runs that should share a first stage (RCLRec's θ0: one seed, one
    pre-training config; :meth:`Recommender.shared_stage`) were fine-tuned from one: their θ0 training
    records (best epoch, validation curve, losses) are equal. Torch rounds by instruction set, so a θ0
    trained again on another CPU is another θ0 (README, Reproducibility), and an ablation's or a sweep
    point's gap to RCLRec would then hold θ0's difference too. Tuning trials and diagnosis rows are left out:
    a trial keeps its own θ0, and the diagnosis says which CPU its rows share."""
    stages: dict[Hashable, dict[str, list[str]]] = {}
    for f, r in zip(files, jobs):
        relative = f.parent.relative_to(folder)
        pretrain = (r.get("fit_extra") or {}).get("pretrain")
        if pretrain is None or relative.parts[0] in ("tuning", "diagnosis"):
            continue
        cls = resolve(r["class"])
        stage = cls.shared_stage(from_dict(cls.Config, r["config"], str(f)), r["seed"])
        record = json.dumps([pretrain["best_epoch"], pretrain["valid_curve"], pretrain["extra"].get("train_loss")])
        stages.setdefault(stage, {}).setdefault(record, []).append(str(relative / f.stem))
    shared = {stage: by_record for stage, by_record in stages.items() if sum(map(len, by_record.values())) > 1}
    if not shared:
        return []  # no first stage with two runs yet: nothing to compare
    runs = sum(len(names) for by_record in shared.values() for names in by_record.values())
    split = {stage: by_record for stage, by_record in shared.items() if len(by_record) > 1}
    if not split:
        return [f"θ0: the {runs} table and sweep runs that share RCLRec's θ0 (one per seed and pre-training config: "
                f"{len(shared)}) were each fine-tuned from that same θ0 (equal training records).", ""]  # fmt: skip
    out = ["**Runs that should share a first stage do not** (RCLRec's θ0 for a seed and pre-training config, trained "
           "more than once, e.g. on another CPU): their differences hold θ0's difference too.", ""]  # fmt: skip
    for by_record in split.values():
        out.append("- " + "; ".join(", ".join(names) for names in by_record.values()))
    return out + [""]


def _split_record(folder: Path, fingerprint: str) -> dict[str, Any] | None:
    """``split.json`` if it is the record of this very split."""
    record = folder / runner.SPLIT_RECORD
    st = json.loads(record.read_text()) if record.exists() else None
    return st if st is not None and st.get("fingerprint") == fingerprint else None


def _after_training(st: dict[str, Any], n_targets: int) -> np.ndarray | None:
    """(T,) bool over the test targets: a repeat of an item the user touched only after the training part;
    None when the split record does not say."""
    if runner.REPEATS_AFTER_TRAINING not in st:
        return None
    mask = np.zeros(n_targets, dtype=bool)
    mask[st[runner.REPEATS_AFTER_TRAINING]] = True
    return mask


def _protocol_section(req: Request, stages: list[tuple[str, Plan | None, str]], runs: list[dict[str, Any]],
                      found: dict[str, Any], n_jobs: int) -> list[str]:  # fmt: skip
    """``runs``: the Table 1 and Table 2 runs; ``n_jobs``: every finished job, grids, sweep and diagnosis too."""
    seeds = sorted({r["seed"] for r in runs if r.get("table") == "table1"})
    capped = [f"{r.display}: {'; '.join(r.capped)}" for r in found.values() if r.capped]
    configs = Configs(req.config_dirs)

    def waiting(plan: Plan, model: str) -> bool:
        """The job's model has a grid whose selection is not made yet: its tuned runs cannot exist."""
        owner = configs.model(model).tune_owner
        return owner is not None and not selection_path(plan.folder, owner).exists()

    missing = []
    for name, plan, note in stages:
        if plan is None:
            continue
        absent = [j.label for j in plan.jobs if not plan.json_path(j).exists() or (note and waiting(plan, j.model))]
        if absent:
            missing.append(f"{name}: {len(absent)} job(s) missing" + (f", waiting for the {note}" if note else ""))
    out = ["## Protocol", "", "The split, metrics, statistics and every deviation from the paper and the baselines' "
           "code are in the README's [Protocol and deviations](../../README.md#protocol-and-deviations).", "",
           f"- Profile `{req.profile}`; seeds {', '.join(map(str, seeds)) or '–'}; {len(runs)} finished Table 1 and 2 "
           f"run(s), {n_jobs} finished job(s) in all with the tuning trials, the sweep and the diagnosis (where they ran "
           "changes no number: the rank files are byte-identical in-process and on any worker).",
           *([f"- **{mixed}**"] if (mixed := report.mixed_runs(list(found.values()))) else []),
           f"- Ended at the epoch cap (a fairness failure: possibly undertrained): {'; '.join(capped) or 'none'}.",
           f"- Missing: {'; '.join(missing) or 'nothing'}.", ""]  # fmt: skip
    return out


def _floor_section(t1: list[report.ModelResults], test: str, after: np.ndarray | None) -> list[str]:
    if not any(r.name == "recent" for r in t1):
        return ["## The floor", "", "No `recent` results.", ""]
    models = _models(t1)
    rec = models["recent"]
    others = [m for n, m in models.items() if n != "recent"]
    ps = claims_mod.pvalues([(m, rec) for m in others], claims_mod.PRIMARY, test)
    rows = [[m.display, claims_mod.effect_text(m, rec), f"{p:.2g}"] for m, p in zip(others, ps)]
    out = ["## The floor", "", "Every model against `recent` (the user's own history, recency- and behavior-weighted; not "
           "in the paper) on NDCG@10, in points with a 95% paired bootstrap CI; Holm over the models:", "",
           tabulate(rows, headers=["model", "vs Recent, N@10", "Holm p"], tablefmt="github"), "", "Repeat-item vs new-item targets (%):", ""]  # fmt: skip
    rows = [report.breakdown_row(r) for r in t1]
    out += [tabulate(rows, headers=["model", "repeat R@10", "repeat N@10", "new R@10", "new N@10"], tablefmt="github"), ""]
    if after is None or not after.any():
        return out
    # A validation history is training data by construction, so validation cannot tell a model that reads
    # its input from one that learned which items go with which user; this split of the test can.
    out += ["Repeat targets by where the item is in the user's history (%): among the user's training events, as "
            "for every repeat validation target, or only after them (the validation target and the events after "
            "it, which no model trains on). A model far better on the first reads who the user is, not what the "
            "history says:", ""]  # fmt: skip
    rows = [report.breakdown_row(r, (r.is_repeat & ~after, after)) for r in t1]
    heads = [f"{where} {m}" for where in ("in training", "after training") for m in ("R@10", "N@10")]
    out += [tabulate(rows, headers=["model", *heads], tablefmt="github"), ""]
    return out


def _training_section(results: list[report.ModelResults], curves: dict[str, Path] | None) -> list[str]:
    rows = [[r.display, report.epochs_cell(r.training),
             f"{sum(t['train_seconds'] or 0.0 for t in r.training):.0f}", ", ".join(sorted({str(t['device']) for t in r.training}))]
            for r in results]  # fmt: skip
    out = ["## Training", ""]
    if curves:
        out += [f"![validation NDCG@10 per epoch]({curves['png'].name})", ""]
    out += [tabulate(rows, headers=["model", "best/run/cap epochs per seed", "train s (all seeds)", "device"], tablefmt="github"), ""]
    return out + report.theta0_note([t for r in results for t in r.training])


def _tuning_section(req: Request, plan: Plan | None) -> list[str]:
    """Every grid point of the study's tuning ``plan`` finished so far (seed 0): its validation NDCG@10, the
    criterion (test metrics are never looked at), its epochs and seconds, and the point selected once a
    model's whole grid has finished."""
    if plan is None:
        return []
    configs = Configs(req.config_dirs)
    grids: dict[str, list[Any]] = {}
    for job in plan.jobs:
        grids.setdefault(job.model, []).append(job)
    rows, counts = [], []
    for model, jobs in grids.items():
        display = configs.model(model).display
        chosen = selection_path(plan.folder, model)
        chosen_trial = json.loads(chosen.read_text())["selected_trial"] if chosen.exists() else None
        done = [(job, json.loads(path.read_text())) for job in jobs if (path := plan.json_path(job)).exists()]
        counts.append(f"{display} {len(done)}/{len(jobs)}")
        for job, r in done:
            record, extra = report.training_record(r), r.get("fit_extra") or {}
            notes = [f"ended at the cap: {stage}" for stage in record["capped"]]
            if extra.get("sft_below_theta0"):
                notes.append(f"fine-tuning below θ0 ({100 * r['valid_ndcg@10']:.2f} < {100 * extra['theta0_valid_ndcg10']:.2f})")
            rows.append([display, ", ".join(f"{k}={v}" for k, v in job.overrides.items()), f"{100 * r['valid_ndcg@10']:.2f}",
                         report.epochs_cell([record]), f"{record['train_seconds']:.0f}", "; ".join(notes) or "–",
                         "✓" if job.name == chosen_trial else ""])  # fmt: skip
    sizes = " or ".join(str(n) for n in sorted({len(jobs) for jobs in grids.values()}))
    intro = (f"The equal budget: every model's grid of {sizes} points, seed 0, selected on validation NDCG@10 (%) of "
             "the conversion targets; test metrics are never looked at. A model's point is selected once its whole grid "
             f"has finished. Points finished: {', '.join(counts)}.")  # fmt: skip
    out = ["## Tuning", "", intro, ""]
    if rows:
        out += [tabulate(rows, headers=["model", "point", "valid N@10", "best/run/cap epochs", "train s", "notes", "selected"],
                         tablefmt="github", disable_numparse=True), ""]  # fmt: skip
    return out


def _counted(values: list[str], total: int, sep: str = ", ") -> str:
    """Distinct values, each with its number of jobs when they differ or do not cover all ``total`` jobs."""
    counts = Counter(values)
    if len(counts) == 1 and len(values) == total:
        return values[0]
    return sep.join(f"{v} ({n} of {total} jobs)" for v, n in sorted(counts.items()))


def _provenance_section(runs: list[dict[str, Any]]) -> list[str]:
    """What the runs record about where they ran; nothing about the process writing the report, so the report
    is a function of the result files alone."""
    n = len(runs)
    commits = sorted({(r.get("versions") or {}).get("commit", "unknown") for r in runs})
    names = sorted({k for r in runs for k in (r.get("versions") or {}) if k != "commit"})
    # A package a job never imported (recbole outside the RecBole models, distributed outside Dask workers)
    # is absent from its record: counted, not mixed up with another version.
    packages = [f"{k} {_counted([r['versions'][k] for r in runs if k in (r.get('versions') or {})], n)}" for k in names]
    hw = _counted([", ".join(f"{k} {v}" for k, v in sorted((r.get("hardware") or {}).items())) for r in runs], n, "; ")
    rows = [[r["model"], r["seed"], r["config_hash"], r["device"], r.get("threads"), _seconds(r.get("train_seconds")),
             _seconds(r.get("eval_seconds")), (r.get("versions") or {}).get("commit", "?")]
            for r in sorted(runs, key=lambda r: (r["model"], r["seed"]))]  # fmt: skip
    return ["## Provenance", "",
            f"- Code: {', '.join(commits) or '–'}.",
            f"- Packages: {'; '.join(packages) or '–'}.",
            f"- Hardware: {hw or '–'}.",
            "- Seconds are wall-clock seconds of the job's own process on its device (an RCLRec job that read θ0 "
            "from the cache counts only its fine-tuning here; the Training section adds θ0's).", "",
            tabulate(rows, headers=["job", "seed", "config hash", "device", "threads", "train s", "eval s", "commit"],
                     tablefmt="github", disable_numparse=True), ""]  # fmt: skip


def _seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f}" if value >= 10 else f"{value:.1f}"
