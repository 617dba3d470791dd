"""``diagnosis.md/.json``: one row per question of ``bench diagnose``, each variant against the model as
configured (seed 0), so a "not reproduced" comes with what explains it. Never part of Table 1 or 2."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from tabulate import tabulate

from bench.claims import bootstrap_ci
from bench.io import failed_path, write_json, write_text
from bench.metrics import per_target
from bench.plan import REFERENCE, Plan


def _failure_note(failed: Path) -> str:
    """A failed row's cell: its traceback's file, or (a worker that died leaves none) the recorded reason."""
    record = json.loads(failed.read_text())
    if record.get("log"):
        return f"failed (see {Path(record['log']).name})"
    return "failed: " + str(record.get("error") or "no reason recorded").replace("|", "\\|")  # a Markdown cell


def write(plan: Plan) -> dict[str, Path]:
    rows, records = [], []
    reference = None
    cpus: list[str] = []
    for job in plan.jobs:
        path = plan.json_path(job)
        question, variant = job.display.split(": ", 1)
        if not path.exists():
            note = _failure_note(failed_path(path)) if failed_path(path).exists() else "not run yet"
            rows.append([question, variant, "–", "–", "–", "–", "–", note])
            records.append({"question": question, "variant": variant, "status": "missing"})
            continue
        r = json.loads(path.read_text())
        cpus.append(_cpu(r))
        with np.load(path.with_suffix(".npz")) as z:
            values = per_target(z["ranks"])
        if question == REFERENCE:
            reference = values
        gen = r.get("generation") or {}
        delta = "–"
        if reference is not None and question != REFERENCE:
            low, high = bootstrap_ci(values["ndcg@10"], reference["ndcg@10"])
            delta = f"{100 * (values['ndcg@10'].mean() - reference['ndcg@10'].mean()):+.2f} [{low:+.2f}, {high:+.2f}]"
        hits = (f"{100 * gen['prefix_hit_share']:.1f}% / {100 * gen['recent_k_hit_share']:.1f}%"
                if "prefix_hit_share" in gen else "–")  # fmt: skip
        capped = "ended at its cap" if (r.get("fit_extra") or {}).get("ended_at_cap") else ""
        rows.append([question, variant, f"{100 * r['metrics']['recall@10']:.2f}", f"{100 * r['metrics']['ndcg@10']:.2f}",
                     delta, f"{100 * r['valid_ndcg@10']:.2f}", hits, capped])  # fmt: skip
        records.append({"question": question, "variant": variant, "metrics": r["metrics"], "generation": gen, "job": job.name})
    for display, reason in plan.waiting:
        question, variant = display.split(": ", 1)
        rows.append([question, variant, "–", "–", "–", "–", "–", f"waiting for {reason}"])
        records.append({"question": question, "variant": variant, "status": "waiting", "waiting_for": reason})
    headers = ["question", "variant", "R@10", "N@10", "Δ N@10 vs reference [95% CI]", "valid N@10", "target in prefix / in last k", "note"]
    text = "\n".join([
        f"# Diagnosis of RCLRec on {plan.folder.name} (seed 0, profile {plan.profile.name})", "",
        "Each variant against the model as configured; Δ in points with a 95% paired bootstrap CI over targets. "
        "\"Target in prefix / in last k\": the share of test targets among the items RCPM selected, and among the "
        "k most recent. \"Valid N@10\": the criterion early stopping kept (for RCLRec, fine-tuning's best epoch; θ0's "
        "own score is the row without fine-tuning). The oracle row leaks the target by design: it bounds what a "
        "perfect selection could give.", "",
        tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True), "",
        *_hardware_note(plan, cpus),
    ])  # fmt: skip
    paths = {"md": plan.folder / "diagnosis.md", "json": plan.folder / "diagnosis.json"}
    write_text(paths["md"], text)
    write_json(paths["json"], records)
    return paths


def _cpu(record: dict[str, Any]) -> str:
    return f"{(record.get('hardware') or {}).get('cpu', 'an unrecorded CPU')} ({record.get('device', 'cpu')})"


def _hardware_note(plan: Plan, cpus: list[str]) -> list[str]:
    """Where the rows ran, and whether that is where the model's own seed-0 run (Table 1's) ran: a θ0 trained
    on another CPU family rounds differently and drifts away (README, Reproducibility), so the rows then
    compare with their own reference, not with Table 1."""
    if not cpus:
        return []
    note = "Where the rows ran: " + "; ".join(f"{cpu}, {n} row{'s' if n > 1 else ''}" for cpu, n in Counter(cpus).items()) + "."
    own = plan.folder / plan.jobs[0].model / "seed0.json"
    if own.exists():
        run = json.loads(own.read_text())
        if set(cpus) != {_cpu(run)}:
            note += (f" Table 1's {run['display']} seed 0 ran on {_cpu(run)}, so its θ0 is not the one these rows "
                     "share: another CPU family rounds differently and a long training drifts away (README, "
                     "Reproducibility). Compare the rows with their own reference, not with Table 1.")
    return [note, ""]
