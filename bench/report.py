"""Result files → the paper's tables (Markdown via tabulate, LaTeX) with paired significance tests.

Everything a table needs is in the result files: each run's JSON names its display name, its table
(``table1``, ``table2``), its row order and the model it extends, so the report reads no configs. Only
results of one split are ever compared: when a results folder holds runs of several split fingerprints,
the one with the most runs is reported and the others are named as left out.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tabulate import tabulate

from bench import latex, stats
from bench.errors import BenchError
from bench.io import result_files, write_json, write_text
from bench.metrics import METRICS, per_target
from bench.stats.comparison import Comparison, compare
from bench.training import capped_stages, from_scratch_seconds

ALPHA = 0.05
HEADERS = {"recall@5": "Recall@5", "recall@10": "Recall@10", "ndcg@5": "NDCG@5", "ndcg@10": "NDCG@10"}

THETA0_SECONDS = ("Train s of an RCLRec run include its pre-training (θ0), whether it trained θ0 or read it from the "
                  "cache: its variants share one θ0 per seed, so their seconds overlap.")


@dataclass(frozen=True)
class ModelResults:
    """Every seed of one model on one split."""

    name: str
    display: str
    order: int
    seeds: list[int]
    per_seed: list[dict[str, float]]
    """Each seed's mean metrics."""
    per_target: dict[str, np.ndarray]
    """metric → (T,) per-target value averaged over seeds: the unit of the paired tests."""
    is_repeat: np.ndarray
    training: list[dict[str, Any]]
    """Each seed's best epoch, epochs run, epoch cap, training seconds, device (None where a model has no
    epochs) and the stages that ended at the cap (:func:`bench.training.capped_stages`)."""

    @property
    def capped(self) -> list[str]:
        """"seed S: best epoch B of C" for each stage of each seed that ended at its epoch cap."""
        return [f"seed {s}: {stage}" for s, t in zip(self.seeds, self.training) for stage in t["capped"]]

    def mean(self, metric: str) -> float:
        return float(np.mean([m[metric] for m in self.per_seed]))

    def std(self, metric: str) -> float:
        return float(np.std([m[metric] for m in self.per_seed], ddof=1)) if len(self.per_seed) > 1 else 0.0


def collect(folder: Path, include: Callable[[dict[str, Any]], bool]) -> tuple[list[ModelResults], str, list[str]]:
    """Read the runs ``folder/<model>/seed*.json`` (+ .npz) whose JSON passes ``include``. Returns the results
    of the majority fingerprint in table order, that fingerprint, and the files left out because they
    belong to another split."""
    runs = [(f, r) for f in result_files(folder) if include(r := json.loads(f.read_text()))]
    if not runs:
        raise BenchError(f"{folder}: no results to report (run 'python -m bench run' first)")
    by_fp: dict[str, list] = defaultdict(list)
    for f, r in runs:
        by_fp[r["split_fingerprint"]].append((f, r))
    fingerprint = max(by_fp, key=lambda fp: (len(by_fp[fp]), max(f.stat().st_mtime for f, _ in by_fp[fp])))
    left_out = [str(f) for fp, items in by_fp.items() if fp != fingerprint for f, _ in items]

    grouped: dict[str, list] = defaultdict(list)
    for f, r in by_fp[fingerprint]:
        grouped[r["model"]].append((f, r))
    results = []
    for name, items in grouped.items():
        items.sort(key=lambda fr: fr[1]["seed"])
        arrays = []
        for f, _ in items:
            with np.load(f.with_suffix(".npz")) as z:
                arrays.append({k: z[k] for k in z.files})
        users = arrays[0]["users"]
        if any(not np.array_equal(a["users"], users) for a in arrays):
            raise BenchError(f"{folder / name}: seeds disagree on the test targets despite one fingerprint")
        stacked = [per_target(a["ranks"]) for a in arrays]
        first = items[0][1]
        results.append(
            ModelResults(
                name=name,
                display=first.get("display") or name,
                order=first.get("order", 1000),
                seeds=[r["seed"] for _, r in items],
                per_seed=[r["metrics"] for _, r in items],
                per_target={m: np.mean([s[m] for s in stacked], axis=0) for m in METRICS},
                is_repeat=arrays[0]["is_repeat"].astype(bool),
                training=[training_record(r) for _, r in items],
            )
        )
    results.sort(key=lambda r: (r.order, r.display, r.name))
    return results, fingerprint, left_out


def failures(folder: Path, include: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
    """The runs of ``folder`` that failed and have no result (their ``seed<S>.failed.json``)."""
    out = []
    for f in sorted(folder.glob("*/seed*.failed.json")):
        record = json.loads(f.read_text())
        if include(record) and not f.with_name(f.name.replace(".failed.json", ".json")).exists():
            out.append(record)
    return out


def training_record(result: dict[str, Any]) -> dict[str, Any]:
    """What the Training tables show of one run's JSON: epochs (best counted from 1), seconds from scratch
    (:func:`~bench.training.from_scratch_seconds`), device and the stages that ended at their cap."""
    extra = result.get("fit_extra") or {}
    return {
        "best_epoch": result.get("best_epoch", 0) + 1 if "epochs_run" in extra else None,
        "epochs_run": extra.get("epochs_run"),
        "epoch_cap": extra.get("epoch_cap"),
        "train_seconds": from_scratch_seconds(result) if "train_seconds" in result else None,
        "device": result.get("device"),
        "profile": result.get("profile"),
        "capped": capped_stages(result.get("best_epoch", 0), extra),
        "pretrain_epochs": _pretrain_epochs(extra.get("pretrain")),
    }


def _epochs(best: int, run: int, cap: int | None) -> str:
    """One stage's "best/run/cap" epochs (best counted from 1)."""
    return f"{best}/{run}/{cap or '–'}"


def _pretrain_epochs(pre: Any) -> str | None:
    """RCLRec's stage 1 (its result's ``fit_extra["pretrain"]``) as "best/run/cap"; None for a one-stage model."""
    if not isinstance(pre, dict) or "epochs_run" not in pre.get("extra", {}):
        return None
    return _epochs(pre["best_epoch"] + 1, pre["extra"]["epochs_run"], pre["extra"].get("epoch_cap"))


def theta0_note(training: list[dict[str, Any]]) -> list[str]:
    """The lines saying that train seconds include θ0, when any of these training records (see
    :func:`training_record`) has a first stage; none otherwise."""
    return [THETA0_SECONDS, ""] if any(t["pretrain_epochs"] for t in training) else []


def significance(results: list[ModelResults], reference: str, test: str) -> dict[str, dict[str, Comparison]]:
    """model → metric → :class:`Comparison` of every model against ``reference`` by ``test``, Holm-corrected
    across the models of the table for each metric."""
    return compare(reference, {r.name: r.per_target for r in results}, METRICS, test)


def _fmt(value: float) -> str:
    return f"{100 * value:.2f}"


def _mean_std(r: ModelResults, metric: str) -> str:
    """"mean ± std" (%) over seeds; the mean alone for one seed, whose spread is unknown, not 0."""
    return f"{_fmt(r.mean(metric))} ± {_fmt(r.std(metric))}" if len(r.seeds) > 1 else _fmt(r.mean(metric))


def breakdown_row(r: ModelResults, groups: Sequence[np.ndarray] | None = None) -> list[str]:
    """Recall@10 and NDCG@10 (%) on each group of targets ((T,) bool masks): by default the repeat-item
    targets, then the new-item targets."""
    groups = (r.is_repeat, ~r.is_repeat) if groups is None else groups
    return [r.display, *(_fmt(float(r.per_target[m][mask].mean())) if mask.any() else "–"
                         for mask in groups for m in ("recall@10", "ndcg@10"))]  # fmt: skip


def epochs_cell(training: list[dict[str, Any]]) -> str:
    """Best/run/cap epochs of each seed's :func:`training_record` ("–" for a model without epochs); for RCLRec "θ0 B/R/C + B/R/C",
    its pre-training then its fine-tuning."""

    def one(t: dict[str, Any]) -> str:
        if t["best_epoch"] is None:
            return "–"
        own = _epochs(t["best_epoch"], t["epochs_run"], t["epoch_cap"])
        return f"θ0 {t['pretrain_epochs']} + {own}" if t["pretrain_epochs"] else own

    return ("; " if any(t["pretrain_epochs"] for t in training) else " ").join(one(t) for t in training)


def _cells(results: list[ModelResults], sig: dict, reference: str, as_latex: bool, improvement: bool = True) -> list[list[str]]:
    bold, under = (
        (lambda s: f"\\textbf{{{s}}}", lambda s: f"\\underline{{{s}}}") if as_latex else (lambda s: f"**{s}**", lambda s: f"<u>{s}</u>")
    )
    dagger, capped = (latex.MARKS[m] if as_latex else m for m in ("†", "‡"))
    rows = [[(latex.escape(r.display) if as_latex else r.display) + (capped if r.capped else "")] for r in results]
    improv = ["Improv."]
    for metric in METRICS:
        means = np.array([r.mean(metric) for r in results])
        order = np.argsort(-means, kind="stable")
        for i, r in enumerate(results):
            text = _fmt(means[i])
            if len(results) > 1 and i == order[0]:
                text = bold(text)
            elif len(results) > 2 and i == order[1]:
                text = under(text)
            if r.name != reference and sig[r.name][metric].p_holm < ALPHA:
                text += dagger
            rows[i].append(text)
        if len(results) > 1 and means[order[1]] > 0:
            gain = 100 * (means[order[0]] / means[order[1]] - 1)
            improv.append(f"{gain:+.2f}\\%" if as_latex else f"{gain:+.2f}%")
        else:
            improv.append("–")
    return rows + [improv] if improvement else rows


def _github(rows: list[list[Any]], headers: list[str]) -> str:
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


def _section(title: str, rows: list[list[Any]], headers: list[str]) -> list[str]:
    """A Markdown section: heading, then the table (or a note when there are no rows)."""
    return [f"## {title}", "", _github(rows, headers) if rows else "(one model only)", ""]


def _legend(n_targets: int, improvement: bool, reference: str, test: str, capped: bool, as_latex: bool) -> str:
    """The table's legend, in Markdown or LaTeX (math-mode marks, p-value and ±)."""
    pct, p, esc = ("\\%", "$p<0.05$", latex.escape) if as_latex else ("%", f"p < {ALPHA}", str)
    assert ALPHA == 0.05  # the LaTeX above spells it out
    dagger, ddagger = (latex.MARKS[m] if as_latex else m for m in ("†", "‡"))
    text = (
        f"Metrics in {pct} on {n_targets} test conversion targets (full ranking), mean over seeds. Best in bold, "
        f"second underlined{'; Improv. = relative gain of the best over the second best' if improvement else ''}. "
        f"{dagger} = differs from {esc(reference)} ({esc(stats.get(test).LABEL)}, Holm-corrected across the models of "
        f"this table, {p})."
    )
    if capped:
        text += f" {ddagger} = training ended at its epoch cap, not by early stopping (see Training): possibly undertrained."
    return text


SMOKE = "Smoke profile: these tables check the wiring end to end; their numbers are not results."


def mixed_runs(results: list[ModelResults]) -> str | None:
    """A one-line notice when the runs of one table come from more than one profile (other budgets) or kind
    of device (GPU kernels are not bit-identical to CPU ones); None when they are all alike."""
    profiles = sorted({str(t["profile"]) for r in results for t in r.training if t.get("profile")})
    devices = sorted({str(t["device"]).split(":")[0] for r in results for t in r.training if t.get("device")})
    if len(profiles) < 2 and len(devices) < 2:
        return None
    parts = [f"{kind} {', '.join(values)}" for kind, values in (("profiles", profiles), ("devices", devices)) if len(values) > 1]
    return (f"Mixed runs: {'; '.join(parts)}. The Training section says which row ran where; rows of "
            "different profiles had different budgets and are not comparable.")  # fmt: skip


def write_table(
    folder: Path,
    stem: str,
    title: str,
    caption: str,
    include: Callable[[dict[str, Any]], bool],
    reference: str | None = None,
    test: str = stats.DEFAULT,
    improvement: bool = True,
) -> dict[str, Path]:
    """Write ``<stem>.md``, ``<stem>.tex`` and ``<stem>_stats.json`` for the runs in ``folder`` that pass
    ``include``: the main table and its companions (mean ± std over seeds, repeat vs new targets, corrected
    p-values; in Markdown also the training record), each a complete table in both formats.

    ``reference`` is the model every other is tested against (by ``test``); by default, or when it has no
    results, the best by mean NDCG@10. ``title`` heads the Markdown ("Table 1: …"); ``caption`` is the
    LaTeX caption, which LaTeX numbers itself.
    """
    results, fingerprint, left_out = collect(folder, include)
    if reference is None or reference not in {r.name for r in results}:
        reference = max(results, key=lambda r: r.mean("ndcg@10")).name
    sig = significance(results, reference, test)
    display = {r.name: r.display for r in results}
    smoke = "smoke" in {t.get("profile") for r in results for t in r.training}
    mixed = mixed_runs(results)
    headers = ["Method", *(HEADERS[m] for m in METRICS)]
    n_targets, n_repeat = len(results[0].is_repeat), int(results[0].is_repeat.sum())
    capped = any(r.capped for r in results)
    seeds = ["Method", "Seeds", *headers[1:]]
    breakdown_headers = ["Method", "Repeat R@10", "Repeat N@10", "New R@10", "New N@10"]
    companions = [  # (title, label suffix, headers, rows of plain text)
        ("Mean ± std over seeds", "seeds", seeds,
         [[r.display, str(len(r.seeds)), *(_mean_std(r, m) for m in METRICS)] for r in results]),
        (f"Repeat vs new targets ({n_repeat} repeat, {n_targets - n_repeat} new)", "repeat", breakdown_headers,
         [breakdown_row(r) for r in results]),
        (f"Holm-corrected p-values vs {display[reference]} ({test})", "pvalues", headers,
         [[display[name], *(f"{sig[name][m].p_holm:.2g}" for m in METRICS)] for name in sig]),
    ]  # fmt: skip
    training_rows = [
        [
            r.display,
            epochs_cell(r.training),
            f"{np.mean([t['train_seconds'] or 0.0 for t in r.training]):.0f}",
            ", ".join(sorted({str(t["device"]) for t in r.training})),
            "; ".join(r.capped) or "–",
        ]
        for r in results
    ]
    md = [f"# {title}", "", *([f"> **{SMOKE}**", ""] if smoke else []), *([f"> **{mixed}**", ""] if mixed else []),
          f"Split fingerprint `{fingerprint}`.", "",
          _github(_cells(results, sig, reference, as_latex=False, improvement=improvement), headers), "",
          _legend(n_targets, improvement, display[reference], test, capped, as_latex=False), ""]  # fmt: skip
    for name, _, cols, rows in companions:
        md += _section(name, rows, cols)
    md += _section("Training", training_rows,
                   ["Method", "Best/run/cap epochs per seed", "Train s (mean)", "Device", "Ended at the epoch cap"])  # fmt: skip
    md += theta0_note([t for r in results for t in r.training])
    failed = failures(folder, include)
    if failed:
        md += ["Failed runs (no result, so not in the table): "
               + "; ".join(f"{f['display']} seed {f['seed']}: {f['error']}" for f in failed), ""]  # fmt: skip
    if left_out:
        md += ["Left out (another split fingerprint): " + ", ".join(left_out), ""]

    banner = "".join(f" ({latex.escape(note.rstrip('.'))})" for note in (SMOKE if smoke else None, mixed) if note)
    tex = [latex.HEADER, *([f"% {SMOKE}"] if smoke else []), *([f"% {mixed}"] if mixed else []), ""]
    tex.append(latex.table(
        f"{latex.escape(caption)}{banner}. {_legend(n_targets, improvement, display[reference], test, capped, as_latex=True)}",
        f"tab:{stem}", headers, _cells(results, sig, reference, as_latex=True, improvement=improvement), improvement,
    ))  # fmt: skip
    for name, suffix, cols, rows in companions:
        tex.append(latex.table(f"{latex.escape(caption)}: {latex.escape(name[0].lower() + name[1:])}{banner}.",
                               f"tab:{stem}-{suffix}", [latex.escape(c) for c in cols],
                               [[latex.escape(c) for c in row] for row in rows]))  # fmt: skip
    record = {
        "fingerprint": fingerprint,
        "reference": reference,
        "test": test,
        "alpha": ALPHA,
        "n_targets": n_targets,
        "display": display,
        "rows": [r.name for r in results],
        "means": {r.name: {m: r.mean(m) for m in METRICS} for r in results},
        "stds": {r.name: {m: r.std(m) for m in METRICS} for r in results},
        "seeds": {r.name: r.seeds for r in results},
        "comparisons": {name: {m: c.to_dict() for m, c in by_metric.items()} for name, by_metric in sig.items()},
        "left_out": left_out,
        "failed": failed,
        "smoke": smoke,
        "mixed": mixed,
    }
    paths = {"md": folder / f"{stem}.md", "tex": folder / f"{stem}.tex", "stats": folder / f"{stem}_stats.json"}
    write_text(paths["md"], "\n".join(md))
    write_text(paths["tex"], "\n".join(tex))
    write_json(paths["stats"], record)
    if left_out:
        print(f"report: left out {len(left_out)} result(s) of another split: {', '.join(left_out)}", file=sys.stderr)
    return paths


def _dataset_folder(folder: Path) -> Path:
    if not folder.is_dir():
        raise BenchError(f"{folder}: no results for dataset '{folder.name}'")
    return folder


def table1(folder: Path, test: str = stats.DEFAULT, reference: str = "rclrec") -> dict[str, Path]:
    """Table 1: every run whose JSON says ``table: table1``, tested against ``reference`` (RCLRec)."""
    return write_table(_dataset_folder(folder), "table1", f"Table 1: overall performance on {folder.name}",
                       f"Overall performance on {folder.name}", lambda r: r.get("table") == "table1", reference, test)  # fmt: skip


def table2(folder: Path, model: str = "rclrec", test: str = stats.DEFAULT) -> dict[str, Path]:
    """Table 2, the ablation table: ``model`` and every ``table2`` run that extends it, each tested against
    ``model``."""
    runs = [json.loads(f.read_text()) for f in result_files(_dataset_folder(folder))]
    variants = [r for r in runs if r.get("table") == "table2" and r.get("extends") == model]
    if not variants:
        raise BenchError(f"{folder}: no ablation results of {model} (run 'python -m bench ablate' first)")
    title = next((r["display"] for r in runs if r["model"] == model), model)
    return write_table(folder, "table2", f"Table 2: ablation of {title} on {folder.name}", f"Ablation of {title} on {folder.name}",
                       lambda r: r["model"] == model or (r.get("table") == "table2" and r.get("extends") == model),
                       model, test, improvement=False)  # fmt: skip


def summary(stats_path: Path, banner: bool = True) -> str:
    """The table's means in %, for the terminal at the end of a command (``banner``: with the smoke
    profile's warning line under it, when the table is a smoke run's)."""
    record = json.loads(stats_path.read_text())
    names = record.get("rows") or list(record["means"])
    rows = [[record["display"].get(name, name), *(_fmt(record["means"][name][m]) for m in METRICS)] for name in names]
    note = f"\n{SMOKE}" if banner and record.get("smoke") else ""
    return tabulate(rows, headers=["%", *(HEADERS[m] for m in METRICS)], tablefmt="simple", disable_numparse=True) + note
