"""The equal tuning budget: every model's small grid (the ``tune`` section of its YAML, the same size for
every model), each point trained with seed 0 and ranked by validation NDCG@10 (never by test metrics).

``python -m bench tune`` runs the grids and writes, per model, ``<results>/<dataset>/tuning/<model>.json``
(every point's validation score and the selected one) and a readable ``tuning.md``;
``python -m bench run --tuned`` then trains the selected configuration, reusing the seed-0 trial.
"""

from __future__ import annotations

import itertools
import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from tabulate import tabulate

from bench import runner
from bench.config import load_tune_grid
from bench.errors import BenchError
from bench.io import atomic_path, write_json, write_text

CRITERION = "valid_ndcg@10"


def grid_points(model: str) -> list[dict[str, Any]]:
    """The grid as a list of parameter overrides, in YAML order (the first point wins ties); empty for a
    model without a grid."""
    grid = load_tune_grid(model)
    if not grid:
        return []
    points = []
    for values in itertools.product(*grid.values()):
        point: dict[str, Any] = {}
        for key, value in zip(grid, values):
            point.update({name.strip(): value for name in key.split(",")})
        points.append(point)
    return points


def trial_name(model: str, point: Mapping[str, Any]) -> str:
    """Where a grid point's run lives, relative to the dataset's results: tuning/<model>/<p=v,…>."""
    return f"tuning/{model}/" + ",".join(f"{k}={v}" for k, v in point.items())


def selection_path(results_dir: Path, dataset: str, model: str) -> Path:
    return results_dir / dataset / "tuning" / f"{model}.json"


def tune(
    models: Sequence[str],
    dataset: str,
    data: str | None,
    profile_name: str,
    results_dir: Path,
    device: torch.device | None = None,
    progress: bool = True,
) -> list[str]:
    """Run every grid point of every model that has a grid (seed 0), then record each model's selection.
    Returns the failed trials; a model with a failed trial gets no selection."""
    grids = {m: points for m in models if (points := grid_points(m))}
    if not grids:
        raise BenchError(f"none of {', '.join(models)} has a 'tune' grid in its YAML")
    variants = {trial_name(m, p): (m, p) for m, points in grids.items() for p in points}
    failed = runner.run(list(variants), dataset, data, profile_name, 1, results_dir, device, progress, variants)
    for model, points in grids.items():
        trials = []
        for point in points:
            path = results_dir / dataset / trial_name(model, point) / "seed0.json"
            if path.exists():
                r = json.loads(path.read_text())
                trials.append({"trial": trial_name(model, point), "params": point, CRITERION: r[CRITERION], "best_epoch": r["best_epoch"],
                               "train_seconds": r["train_seconds"], "split_fingerprint": r["split_fingerprint"]})  # fmt: skip
        if len(trials) < len(points):
            runner.warn(f"✗ tuning {model}: {len(points) - len(trials)} of {len(points)} trials failed; nothing selected")
            continue
        best = max(range(len(trials)), key=lambda i: (trials[i][CRITERION], -i))
        write_json(selection_path(results_dir, dataset, model), {
            "model": model, "profile": profile_name, "criterion": f"{CRITERION} (seed 0)",
            "split_fingerprint": trials[0]["split_fingerprint"], "trials": trials, "selected": trials[best]["params"],
            "selected_trial": trials[best]["trial"],
        })  # fmt: skip
        runner.say(f"✓ tuning {model}: selected {trials[best]['trial'].split('/')[-1]} "
                   f"(valid NDCG@10 {trials[best][CRITERION]:.4f})")  # fmt: skip
    write_summary(results_dir, dataset)
    return failed


def selected(results_dir: Path, dataset: str, model: str, profile_name: str) -> tuple[dict[str, Any], str] | None:
    """The selected overrides of a model and the name of their trial (None for a model without a grid).
    Raises when it has a grid but was not tuned on this dataset and profile."""
    if not load_tune_grid(model):
        return None
    path = selection_path(results_dir, dataset, model)
    if not path.exists():
        raise BenchError(f"{model} has a tuning grid but {path} does not exist: run 'python -m bench tune' first")
    record = json.loads(path.read_text())
    if record["profile"] != profile_name:
        raise BenchError(f"{path}: tuned at profile '{record['profile']}', not '{profile_name}'")
    return dict(record["selected"]), str(record["selected_trial"])


def reuse_trial(results_dir: Path, dataset: str, model: str, trial: str) -> None:
    """Copy the selected point's seed-0 run into the model's results (same config, same split: the same
    run), so ``run --tuned`` does not train it twice. The runner still checks fingerprint and config."""
    source = results_dir / dataset / trial / "seed0.json"
    target = results_dir / dataset / model / "seed0.json"
    if target.exists() or not source.exists():
        return
    with atomic_path(target.with_suffix(".npz")) as tmp:
        shutil.copyfile(source.with_suffix(".npz"), tmp)
    write_json(target, {**json.loads(source.read_text()), "model": model, "tuned_from": str(source.parent)})


def write_summary(results_dir: Path, dataset: str) -> Path:
    """tuning.md: each model's grid with validation NDCG@10, the selected point marked."""
    folder = results_dir / dataset / "tuning"
    rows = []
    for path in sorted(folder.glob("*.json")):
        record = json.loads(path.read_text())
        for trial in record["trials"]:
            mark = "✓" if trial["trial"] == record["selected_trial"] else ""
            rows.append([record["model"], trial["trial"].split("/")[-1].replace(",", ", "), f"{100 * trial[CRITERION]:.2f}", trial["best_epoch"], mark])
    text = (f"# Tuning on {dataset}\n\nEvery model gets the same budget: its grid below, seed 0, selected on "
            "validation NDCG@10 (%) of the conversion targets; test metrics are never looked at.\n\n"
            + tabulate(rows, headers=["model", "point", "valid N@10", "best epoch", "selected"], tablefmt="github") + "\n")  # fmt: skip
    out = results_dir / dataset / "tuning.md"
    write_text(out, text)
    return out
