from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench.errors import BenchError
from bench.io import write_json, write_npz
from bench.metrics import summarize
from bench.report import table1, table2

DISPLAY = {"pop": "Pop", "recent": "Recent", "sasrec": "SASRec", "bert4rec": "BERT4Rec", "rclrec": "RCLRec", "gear": "GEAR", "mbgen": "MBGen"}
ORDER = list(DISPLAY)


def _result(folder: Path, model: str, seed: int, ranks: np.ndarray, fingerprint: str = "fp1", **fields: object) -> None:
    is_repeat = np.arange(len(ranks)) % 2 == 0
    path = folder / model / f"seed{seed}.json"
    write_npz(path.with_suffix(".npz"), ranks=ranks, users=np.arange(len(ranks)), items=np.zeros(len(ranks), int), is_repeat=is_repeat)
    identity = {"display": DISPLAY.get(model, model), "table": "table1", "order": ORDER.index(model) if model in ORDER else 1000}
    write_json(path, {"model": model, "seed": seed, "split_fingerprint": fingerprint, "metrics": summarize(ranks, is_repeat),
                      **identity, **fields})  # fmt: skip


@pytest.fixture
def results(tmp_path: Path) -> Path:
    n = 200
    rng = np.random.default_rng(0)
    folder = tmp_path / "synthetic"
    for seed in (0, 1):
        _result(folder, "pop", seed, rng.integers(5, 60, n).astype(float))
        _result(folder, "sasrec", seed, rng.integers(1, 12, n).astype(float))
        strong = rng.integers(1, 4, n).astype(float)
        strong[:3] = np.inf  # a generative model's misses
        _result(folder, "rclrec", seed, strong)
    return tmp_path


def test_table1_layout_marks_and_improvement(results: Path) -> None:
    paths = table1(results / "synthetic")
    md = paths["md"].read_text()
    lines = [line for line in md.splitlines() if line.startswith("| ")]
    assert [line.split("|")[1].strip() for line in lines[:5]] == ["Method", "Pop", "SASRec", "RCLRec", "Improv."]
    stats = json.loads(paths["stats"].read_text())
    means = stats["means"]
    best, second = means["rclrec"]["ndcg@10"], means["sasrec"]["ndcg@10"]
    assert f"**{100 * best:.2f}**" in lines[3]
    assert f"<u>{100 * second:.2f}</u>†" in lines[2]  # second best, and significantly worse than RCLRec
    assert f"{100 * (best / second - 1):+.2f}%" in lines[4]
    assert stats["reference"] == "rclrec"
    comparisons = stats["comparisons"]
    assert set(comparisons) == {"pop", "sasrec"}
    for metric in ("recall@5", "ndcg@10"):
        raw = [comparisons[m][metric]["p"] for m in ("pop", "sasrec")]
        adjusted = [comparisons[m][metric]["p_holm"] for m in ("pop", "sasrec")]
        assert all(a >= r for a, r in zip(adjusted, raw))
        assert all(comparisons[m][metric]["test"] == "wilcoxon" for m in ("pop", "sasrec"))
    assert "± " in md and "Repeat R@10" in md
    tex = paths["tex"].read_text()
    assert "\\toprule" in tex and "\\textbf{" in tex and "\\underline{" in tex and "Improv." in tex


def test_other_fingerprints_are_left_out(results: Path) -> None:
    _result(results / "synthetic", "bert4rec", 0, np.ones(200), fingerprint="other")
    paths = table1(results / "synthetic")
    md = paths["md"].read_text()
    assert "BERT4Rec" not in md.split("Left out")[0]
    assert "bert4rec/seed0.json" in md.split("Left out")[1]
    assert json.loads(paths["stats"].read_text())["left_out"]


def test_identical_models_are_not_significant(tmp_path: Path) -> None:
    ranks = np.arange(1, 101, dtype=float)
    _result(tmp_path / "d", "pop", 0, ranks)
    _result(tmp_path / "d", "recent", 0, ranks.copy())
    stats = json.loads(table1(tmp_path / "d")["stats"].read_text())
    only = next(iter(stats["comparisons"].values()))
    assert only["ndcg@10"]["p_holm"] == 1.0 and "†" not in table1(tmp_path / "d")["md"].read_text().split("Metrics in")[0]


def test_no_results_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(BenchError, match="no results"):
        (tmp_path / "d").mkdir()
        table1(tmp_path / "d")


def test_a_run_that_ended_at_its_epoch_cap_is_marked(tmp_path: Path) -> None:
    ranks = np.arange(1, 101, dtype=float)
    capped = {"epochs_run": 50, "epoch_cap": 50, "ended_at_cap": True}
    stopped = {"epochs_run": 12, "epoch_cap": 20, "ended_at_cap": False}
    _result(tmp_path / "d", "gear", 0, ranks, best_epoch=49, fit_extra=capped, train_seconds=10.0, device="cpu")
    _result(tmp_path / "d", "mbgen", 0, ranks, best_epoch=8, fit_extra=stopped, train_seconds=4.0, device="cpu")
    paths = table1(tmp_path / "d")
    md = paths["md"].read_text()
    rows = {line.split("|")[1].strip(): line for line in md.split("Metrics in")[0].splitlines() if line.startswith("| ")}
    assert "GEAR‡" in rows and "MBGen" in rows  # MBGen stopped early: no mark
    assert "‡ = training ended at its epoch cap" in md
    training = {cells[0]: cells[1:] for line in md.split("## Training")[1].splitlines() if line.startswith("| ")
                for cells in [[c.strip() for c in line.strip("|").split("|")]]}  # fmt: skip
    assert training["GEAR"] == ["50/50/50", "10", "cpu", "seed 0: best epoch 50 of 50"]
    assert training["MBGen"] == ["9/12/20", "4", "cpu", "–"]
    assert "GEAR$^\\ddagger$" in paths["tex"].read_text()


def test_display_names_table_and_order_come_from_the_result_files(tmp_path: Path) -> None:
    ranks = np.arange(1, 101, dtype=float)
    folder = tmp_path / "d"
    _result(folder, "cat-pop", 0, ranks, display="CatPop", order=5)  # a user's model: '-' in its name is fine
    _result(folder, "recent", 0, ranks / 2)
    _result(folder, "tuning-trial", 0, ranks, table=None)  # no table: never a row
    _result(folder, "rclrec-no-qal", 0, ranks, display="w/o QAL", table="table2", extends="rclrec")
    md = table1(folder, reference="recent")["md"].read_text().split("Metrics in")[0]
    rows = [line.split("|")[1].strip() for line in md.splitlines() if line.startswith("| ")][1:-1]
    assert rows == ["Recent", "CatPop"]  # by order (1 < 5), not by name


def test_table2_is_the_parent_and_the_variants_that_extend_it(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    folder = tmp_path / "d"
    _result(folder, "rclrec", 0, rng.integers(1, 4, 200).astype(float))
    _result(folder, "sasrec", 0, rng.integers(1, 4, 200).astype(float))
    _result(folder, "no-x", 0, rng.integers(1, 30, 200).astype(float), display="w/o X", table="table2", extends="rclrec", order=101)
    _result(folder, "other", 0, rng.integers(1, 30, 200).astype(float), display="Other", table="table2", extends="sasrec")
    paths = table2(folder, "rclrec", test="ttest")
    md = paths["md"].read_text()
    rows = [line.split("|")[1].strip() for line in md.split("Metrics in")[0].splitlines() if line.startswith("| ")][1:]
    assert rows == ["RCLRec", "w/o X"] and "Table 2: ablation of RCLRec on d" in md
    assert "†" in next(line for line in md.splitlines() if line.startswith("| w/o X"))
    assert "paired t-test" in md and "Holm-corrected p-values vs RCLRec (ttest)" in md
    stats = json.loads(paths["stats"].read_text())
    assert stats["test"] == "ttest" and set(stats["comparisons"]) == {"no-x"}
    with pytest.raises(BenchError, match="no ablation results of gear"):
        table2(folder, "gear")


def test_a_table_of_runs_from_several_profiles_or_devices_says_so(tmp_path: Path) -> None:
    ranks = np.arange(1, 101, dtype=float)
    _result(tmp_path / "d", "pop", 0, ranks, profile="cpu", device="cpu")
    _result(tmp_path / "d", "sasrec", 0, ranks, profile="cpu", device="cpu")
    alike = table1(tmp_path / "d")
    assert "Mixed runs" not in alike["md"].read_text() and json.loads(alike["stats"].read_text())["mixed"] is None
    _result(tmp_path / "d", "rclrec", 0, ranks, profile="paper", device="cuda:0")
    paths = table1(tmp_path / "d")
    notice = "Mixed runs: profiles cpu, paper; devices cpu, cuda."
    assert f"> **{notice}" in paths["md"].read_text()
    tex = paths["tex"].read_text()
    assert f"% {notice}" in tex and tex.count("(Mixed runs: profiles cpu, paper; devices cpu, cuda") == 4  # every caption
    assert json.loads(paths["stats"].read_text())["mixed"].startswith(notice)


def test_an_rclrec_run_counts_its_pretraining_in_epochs_and_seconds(tmp_path: Path) -> None:
    """A run that read θ0 from the cache trained only stage 2 itself (12 s), but producing it took θ0's 600 s
    too: the Training table shows both stages' epochs and the seconds from scratch, and says θ0 is shared."""
    ranks = np.arange(1, 101, dtype=float)
    pre = {"best_epoch": 96, "extra": {"epochs_run": 107, "epoch_cap": 300, "ended_at_cap": False, "theta0": "cached", "train_seconds": 600.0}}
    sft = {"epochs_run": 11, "epoch_cap": 300, "ended_at_cap": False, "pretrain": pre}
    _result(tmp_path / "d", "rclrec", 0, ranks, best_epoch=0, fit_extra=sft, train_seconds=12.0, device="cpu")
    trained = {**sft, "pretrain": {**pre, "extra": {**pre["extra"], "theta0": "trained"}}}
    _result(tmp_path / "d", "rclrec", 1, ranks, best_epoch=0, fit_extra=trained, train_seconds=612.0, device="cpu")
    _result(tmp_path / "d", "mbgen", 0, ranks, best_epoch=8, fit_extra={"epochs_run": 12, "epoch_cap": 20}, train_seconds=4.0, device="cpu")
    md = table1(tmp_path / "d")["md"].read_text()
    training = {cells[0]: cells[1:] for line in md.split("## Training")[1].splitlines() if line.startswith("| ")
                for cells in [[c.strip() for c in line.strip("|").split("|")]]}  # fmt: skip
    assert training["RCLRec"][:2] == ["θ0 97/107/300 + 1/11/300; θ0 97/107/300 + 1/11/300", "612"]  # both seeds 612 s
    assert training["MBGen"][:2] == ["9/12/20", "4"]
    assert "include its pre-training (θ0)" in md
    spread = {cells[0]: cells[2:] for line in md.split("## Mean ± std over seeds")[1].split("##")[0].splitlines() if line.startswith("| ")
              for cells in [[c.strip() for c in line.strip("|").split("|")]]}  # fmt: skip
    assert spread["RCLRec"][0] == "5.00 ± 0.00" and spread["MBGen"][0] == "5.00"  # one seed: its spread is unknown, not 0
