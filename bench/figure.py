"""Figure 3: Recall@5 and Recall@10 against one RCLRec parameter (the curriculum length k in the paper),
mean over seeds with ±1 std error bars, as PNG, PDF and the CSV behind them: ``figure3.*`` for ``k``,
``sweep-<param>.*`` for any other parameter, so sweeps never overwrite each other."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from bench.errors import BenchError  # noqa: E402
from bench.io import result_files, write_bytes, write_text  # noqa: E402

LABELS = {"k": "Curriculum Length", "tau": "Temperature τ", "lam": "λ (quality-aware loss)", "margin": "Margin m"}


def stem(param: str) -> str:
    """The file name of a sweep's figure: the paper's Figure 3 is the curriculum length."""
    return "figure3" if param == "k" else f"sweep-{param}"


def figure3(folder: Path, model: str, param: str, values: Sequence[float | int]) -> dict[str, Path]:
    """The sweep of ``model`` over ``param`` at ``values`` from ``folder/sweep/<model>/<param>=<value>/``."""
    rows = []
    for value in values:
        runs = [json.loads(f.read_text()) for f in result_files(folder / "sweep" / model / f"{param}={value}", "")]
        if not runs:
            continue
        fingerprints = {r["split_fingerprint"] for r in runs}
        r5 = np.array([r["metrics"]["recall@5"] for r in runs])
        r10 = np.array([r["metrics"]["recall@10"] for r in runs])
        std = lambda a: float(a.std(ddof=1)) if len(a) > 1 else 0.0  # noqa: E731
        rows.append({"value": value, "seeds": len(runs), "recall@5": r5.mean(), "recall@5_std": std(r5),
                     "recall@10": r10.mean(), "recall@10_std": std(r10), "fingerprint": ",".join(sorted(fingerprints))})  # fmt: skip
    if not rows:
        raise BenchError(f"{folder}: no sweep results for {model} over {param} (run 'python -m bench sweep' first)")
    if len({r["fingerprint"] for r in rows}) > 1:
        raise BenchError(f"{folder}: sweep results come from different splits; rerun in a fresh --results-dir")
    dataset = folder.name

    x = [r["value"] for r in rows]
    fig, ax = plt.subplots(figsize=(4.2, 3.0))
    for metric, marker in (("recall@5", "o"), ("recall@10", "s")):
        ax.errorbar(x, [r[metric] for r in rows], yerr=[r[f"{metric}_std"] for r in rows], marker=marker,
                    capsize=3, linewidth=1.5, label=metric.replace("recall", "Recall"))  # fmt: skip
    ax.set_xlabel(LABELS.get(param, param))
    ax.set_ylabel("Recall")
    ax.set_xticks(x)
    ax.grid(alpha=0.3)
    ax.legend(frameon=False)
    ax.set_title(f"Sensitivity of {param} ({dataset})", fontsize=9)
    fig.tight_layout()
    name = stem(param)
    paths = {kind: folder / f"{name}.{kind}" for kind in ("png", "pdf", "csv")}
    for kind in ("png", "pdf"):
        write_bytes(paths[kind], lambda fh, kind=kind: fig.savefig(fh, format=kind, dpi=200))
    plt.close(fig)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    write_text(paths["csv"], out.getvalue())
    return paths
