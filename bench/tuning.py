"""The equal tuning budget: every model's small grid (the ``tune`` section of its YAML, the same size for
every model), each point trained with seed 0 and ranked by validation NDCG@10 (never by test metrics).

``python -m bench tune`` runs the grids (:func:`bench.plan.tune_plan`) and then :func:`select` writes, per
model, ``<results>/<dataset>/tuning/<model>.json`` (every point's validation score and the selected one)
and a readable ``tuning.md``; ``--tuned`` on ``run``, ``ablate`` and ``sweep`` then uses the selection
(a variant uses its parent's), reusing the selected seed-0 trial instead of training it again.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from tabulate import tabulate

from bench import runner
from bench.io import write_json, write_text
from bench.plan import Plan, selection_path

CRITERION = "valid_ndcg@10"


def select(plan: Plan) -> None:
    """Record the selection of every model whose grid is in ``plan`` (a ``tune`` plan); a model with a
    missing trial gets none."""
    grids = defaultdict(list)
    for job in plan.jobs:
        grids[job.model].append(job)
    for model, jobs in grids.items():
        trials = []
        for job in jobs:
            path = plan.json_path(job)
            if path.exists():
                r = json.loads(path.read_text())
                trials.append({"trial": job.name, "params": dict(job.overrides), CRITERION: r[CRITERION], "best_epoch": r["best_epoch"],
                               "train_seconds": r["train_seconds"], "split_fingerprint": r["split_fingerprint"]})  # fmt: skip
        if len(trials) < len(jobs):
            runner.warn(f"✗ tuning {model}: {len(jobs) - len(trials)} of {len(jobs)} trials failed; nothing selected")
            continue
        best = max(range(len(trials)), key=lambda i: (trials[i][CRITERION], -i))
        write_json(selection_path(plan.folder, model), {
            "model": model, "profile": plan.profile.name, "criterion": f"{CRITERION} (seed 0)",
            "split_fingerprint": trials[0]["split_fingerprint"], "trials": trials, "selected": trials[best]["params"],
            "selected_trial": trials[best]["trial"],
        })  # fmt: skip
        runner.say(f"✓ tuning {model}: selected {trials[best]['trial'].split('/')[-1]} "
                   f"(valid NDCG@10 {trials[best][CRITERION]:.4f})")  # fmt: skip
    write_summary(plan.folder)


def write_summary(folder: Path) -> Path:
    """tuning.md: each model's grid with validation NDCG@10, the selected point marked."""
    rows = []
    for path in sorted((folder / "tuning").glob("*.json")):
        record = json.loads(path.read_text())
        for trial in record["trials"]:
            mark = "✓" if trial["trial"] == record["selected_trial"] else ""
            rows.append([record["model"], trial["trial"].split("/")[-1].replace(",", ", "), f"{100 * trial[CRITERION]:.2f}", trial["best_epoch"] + 1, mark])
    text = (f"# Tuning on {folder.name}\n\nEvery model gets the same budget: its grid below, seed 0, selected on "
            "validation NDCG@10 (%) of the conversion targets; test metrics are never looked at.\n\n"
            + tabulate(rows, headers=["model", "point", "valid N@10", "best epoch", "selected"], tablefmt="github") + "\n")  # fmt: skip
    out = folder / "tuning.md"
    write_text(out, text)
    return out
