"""The command line as a user meets it: exit codes, one-line errors, nothing written on bad input,
finished runs skipped, the same numbers twice."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

T0 = 1_600_000_000  # 2020-09-13: a plausible log (timestamps before 1990 are refused)
GOOD = "user_id,item_id,behavior,timestamp\n" + "".join(
    f"u{u},i{(u * 7 + t) % 13},{'buy' if t in (4, 6) else 'click'},{T0 + t}\n" for u in range(12) for t in range(7)
)


def bench(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "bench", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


@pytest.mark.parametrize(
    ("content", "args", "expected"),
    [
        (None, ["--dataset", "csv", "--data", "missing-folder"], "missing-folder: no such file or folder"),
        ("user_id,item_id,timestamp\nu,i,1\n", ["--dataset", "csv"], "missing column(s) behavior"),
        (GOOD.replace(f"click,{T0 + 3}", f"view,{T0 + 3}", 1), ["--dataset", "csv"], "line 5: unknown behavior 'view'"),
        (GOOD.replace(f",{T0 + 3}\n", ",soon\n", 1), ["--dataset", "csv"], "line 5: unparsable timestamp 'soon'"),
        ("user_id,item_id,behavior,timestamp\n", ["--dataset", "csv"], "header but no rows"),
        ("", ["--dataset", "csv"], "the file is empty"),
        (GOOD.replace("buy", "click"), ["--dataset", "csv"], "no conversion targets after filtering"),
        (None, ["--dataset", "nope"], "unknown dataset 'nope'"),
        (None, ["--profile", "huge"], "unknown profile 'huge'"),
        (None, ["--models", "pop,gpt5"], "unknown model 'gpt5'"),
    ],
    ids=["missing-file", "missing-column", "unknown-behavior", "bad-timestamp", "no-rows", "empty-file",
         "no-targets", "unknown-dataset", "unknown-profile", "unknown-model"],
)
def test_bad_input_is_one_line_exit_2_nothing_written(tmp_path: Path, content, args, expected) -> None:
    data = tmp_path / "data"
    data.mkdir()
    if content is not None:
        (data / "interactions.csv").write_text(content)
    if "--data" not in args and "--dataset" in args and args[args.index("--dataset") + 1] == "csv":
        args = [*args, "--data", str(data)]
    if "--models" not in args:
        args = ["--models", "pop", *args]
    out = tmp_path / "results"
    profile = [] if "--profile" in args else ["--profile", "smoke"]
    result = bench("run", *args, *profile, "--results-dir", str(out), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert expected in lines[0]
    assert not out.exists() or _files(out) == []


def test_usage_errors_are_one_line(tmp_path: Path) -> None:
    result = bench("run", "--models", "pop", "--all", cwd=tmp_path)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1


def test_run_writes_results_skips_on_rerun_and_reports(tmp_path: Path) -> None:
    out = tmp_path / "r"
    first = bench("run", "--models", "pop,recent", "--profile", "smoke", "--results-dir", str(out), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    runs = {m: json.loads((out / "synthetic" / m / "seed0.json").read_text()) for m in ("pop", "recent")}
    assert runs["pop"]["split_fingerprint"] == runs["recent"]["split_fingerprint"]
    for key in ("model", "dataset", "seed", "profile", "split_fingerprint", "metrics", "n_targets", "best_epoch", "train_seconds", "config"):
        assert key in runs["pop"]
    assert set(runs["pop"]["metrics"]) >= {"recall@5", "recall@10", "ndcg@5", "ndcg@10"}
    assert (out / "synthetic" / "pop" / "seed0.npz").exists()
    table = (out / "synthetic" / "table1.md").read_text()
    assert "| Pop " in table and "| Recent " in table and "Improv." in table
    assert (out / "synthetic" / "table1.tex").exists() and (out / "synthetic" / "table1_stats.json").exists()
    # no temporary files left behind
    assert not [p for p in _files(out) if p.name.endswith(".tmp")]

    again = bench("run", "--models", "pop,recent", "--profile", "smoke", "--results-dir", str(out), cwd=tmp_path)
    assert again.returncode == 0 and "finished earlier, skipped" in again.stdout
    assert json.loads((out / "synthetic" / "pop" / "seed0.json").read_text()) == runs["pop"]

    report = bench("report", "--results-dir", str(out), cwd=tmp_path)
    assert report.returncode == 0 and "table1.md" in report.stdout


def test_results_of_another_config_are_not_overwritten(tmp_path: Path) -> None:
    out = tmp_path / "r"
    assert bench("run", "--models", "pop", "--profile", "smoke", "--results-dir", str(out), cwd=tmp_path).returncode == 0
    before = (out / "synthetic" / "pop" / "seed0.json").read_text()
    clash = bench("run", "--models", "pop", "--profile", "cpu", "--results-dir", str(out), cwd=tmp_path)
    assert clash.returncode == 2 and "holds a result for another split" in clash.stderr
    assert (out / "synthetic" / "pop" / "seed0.json").read_text() == before
    assert bench("run", "--models", "recent", "--profile", "smoke", "--results-dir", str(out), cwd=tmp_path).returncode == 0
    clash = bench("run", "--models", "recent", "--profile", "smoke", "--results-dir", str(out), "--set", "recent.decay=0.5",
                  cwd=tmp_path)  # fmt: skip
    assert clash.returncode == 2 and "holds a result for another config" in clash.stderr
    assert "this command's {'decay': 0.5}: --tuned or --set?" in clash.stderr


def test_data_stats(tmp_path: Path) -> None:
    result = bench("data", "stats", "--profile", "smoke", "--json", "--results-dir", str(tmp_path / "r"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    stats = json.loads(result.stdout)
    from bench.config import Configs
    from bench.data.loaders import load
    from bench.data.preprocess import preprocess
    from bench.data.split import build_split

    ds = Configs().dataset("synthetic", "smoke")
    split = build_split(preprocess(load("synthetic", None, dataclasses.asdict(ds.synthetic)), ds.preprocess), ds.split)
    assert stats == json.loads(json.dumps(split.stats()))  # the numbers of the split every model trains on
    assert stats["users"] == 300 and stats["test_targets"] == len(split.test) > 0
    assert 0 < stats["conversion_share"] < 0.05 and stats["rows_buy"] == int((split.behaviors == 3).sum())
    codes = bench("data", "stats", "--profile", "smoke", "--json", "--semantic-ids", "--results-dir", str(tmp_path / "r"),
                  cwd=tmp_path)  # fmt: skip
    assert codes.returncode == 0, codes.stderr
    ids = json.loads(codes.stdout)
    cached = json.loads(next((tmp_path / "r" / ".cache" / "splits").glob("*-semids-*.json")).read_text())
    assert ids["semantic_ids_fingerprint"] == cached["fingerprint"] and ids["semantic_ids_collision_rate"] == cached["collision_rate"]
    buckets = ("0", "1", "2", "3-5", "6+")
    assert sum(ids[f"semantic_ids_items_with_{b}_training_events"] for b in buckets) == stats["items"]
    assert 0 <= ids["semantic_ids_collision_groups_within_one_feature_value_set"] <= 1


def test_one_failing_model_does_not_stop_the_others(tmp_path: Path) -> None:
    configs = tmp_path / "configs"
    (configs / "models").mkdir(parents=True)
    (configs / "models" / "broken.yaml").write_text("class: tests.broken_model:Broken\n")
    out = tmp_path / "r"
    result = bench("run", "--models", "broken,pop", "--profile", "smoke", "--results-dir", str(out), "--config-dir", str(configs),
                   cwd=tmp_path)  # fmt: skip
    assert result.returncode == 1
    assert "broken seed0: RuntimeError: deliberately broken" in result.stderr
    assert (out / "synthetic" / "pop" / "seed0.json").exists()
    assert not (out / "synthetic" / "broken" / "seed0.json").exists()
    assert "deliberately broken" in (out / "synthetic" / "broken" / "seed0.error.log").read_text()


def test_ablate_writes_table2_with_four_rows(tmp_path: Path) -> None:
    out = tmp_path / "r"
    result = bench("ablate", "--profile", "smoke", "--results-dir", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    md = (out / "synthetic" / "table2.md").read_text().split("Metrics in")[0]
    rows = [line.split("|")[1].strip().rstrip("‡") for line in md.splitlines() if line.startswith("| ")][1:]
    assert rows == ["RCLRec", "w/o RCPM", "Recent-k curriculum", "w/o quality-aware loss"]
    assert "Improv." not in md and (out / "synthetic" / "table2.tex").exists()
    stats = json.loads((out / "synthetic" / "table2_stats.json").read_text())
    assert stats["reference"] == "rclrec" and set(stats["comparisons"]) == {"rclrec-no-rcpm", "rclrec-recent-k", "rclrec-no-qal"}
    assert len(list((out / ".cache" / "splits").glob("*theta0*.pt"))) == 1  # θ0 trained once, shared by the variants


def test_sweep_writes_figure3_and_other_sweeps_their_own_files(tmp_path: Path) -> None:
    out = tmp_path / "r"
    result = bench("sweep", "--param", "k", "--values", "1,2", "--profile", "smoke", "--results-dir", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    folder = out / "synthetic"
    assert (folder / "figure3.png").stat().st_size > 0 and (folder / "figure3.pdf").stat().st_size > 0
    lines = (folder / "figure3.csv").read_text().splitlines()
    assert lines[0].startswith("value,seeds,recall@5") and [line.split(",")[0] for line in lines[1:]] == ["1", "2"]
    assert json.loads((folder / "sweep" / "rclrec" / "k=2" / "seed0.json").read_text())["sweep"] == {
        "model": "rclrec", "param": "k", "value": 2, "display": "RCLRec"}
    bad = bench("sweep", "--param", "prefix", "--values", "1", "--profile", "smoke", "--results-dir", str(out), cwd=tmp_path)
    assert bad.returncode == 2 and "not a numeric parameter" in bad.stderr
    figure3 = (folder / "figure3.csv").read_text()
    tau = bench("sweep", "--param", "tau", "--values", "0.5", "--profile", "smoke", "--results-dir", str(out), cwd=tmp_path)
    assert tau.returncode == 0, tau.stderr
    assert (folder / "sweep-tau.csv").exists() and (folder / "figure3.csv").read_text() == figure3


def test_set_changes_one_field_and_is_recorded(tmp_path: Path) -> None:
    out = tmp_path / "r"
    result = bench("run", "--models", "recent", "--profile", "smoke", "--results-dir", str(out), "--set", "recent.decay=0.5",
                   cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    run = json.loads((out / "synthetic" / "recent" / "seed0.json").read_text())
    assert run["config"]["decay"] == 0.5 and run["overrides"] == {"decay": 0.5}
    for sets, message in [
        ("recent.dacay=0.5", "--set recent: unknown field 'dacay'"),
        ("recent.decay=fast", "--set recent: field 'decay' must be a number"),
        ("sasrec.decay=0.5", "'sasrec' is not a model of this command"),
    ]:
        bad = bench("run", "--models", "recent", "--profile", "smoke", "--results-dir", str(tmp_path / "x"), "--set", sets,
                    cwd=tmp_path)  # fmt: skip
        assert bad.returncode == 2 and message in bad.stderr and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
        assert not (tmp_path / "x").exists()


def test_two_logs_share_a_results_dir(tmp_path: Path) -> None:
    out = tmp_path / "r"
    for name in ("shop-a", "shop-b"):
        data = tmp_path / name
        data.mkdir()
        (data / "interactions.csv").write_text(GOOD if name == "shop-a" else GOOD.replace("u1,", "u99,"))
        result = bench("run", "--models", "pop,recent", "--dataset", "csv", "--data", str(data), "--profile", "smoke",
                       "--results-dir", str(out), cwd=tmp_path)  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert f"overall performance on {name}" in (out / name / "table1.md").read_text()
    named = bench("run", "--models", "pop", "--dataset", "csv", "--data", str(tmp_path / "shop-a"), "--name", "mine",
                  "--profile", "smoke", "--results-dir", str(out), cwd=tmp_path)  # fmt: skip
    assert named.returncode == 0 and json.loads((out / "mine" / "pop" / "seed0.json").read_text())["dataset"] == "mine"


def test_a_reader_that_closes_the_output_stops_the_command_silently(tmp_path: Path) -> None:
    """`bench … | head`: no "Broken pipe" error line and no traceback, the shell's SIGPIPE status."""
    read, write = os.pipe()
    os.close(read)  # the reader is gone before anything is written
    try:
        result = subprocess.run([sys.executable, "-m", "bench", "models"], cwd=tmp_path, stdout=write, stderr=subprocess.PIPE,
                                env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120, check=False)  # fmt: skip
    finally:
        os.close(write)
    assert (result.returncode, result.stderr) == (141, b"")


def test_a_result_on_other_semantic_ids_is_not_taken_for_this_run(tmp_path: Path) -> None:
    # Semantic IDs depend on the BLAS build and CPU that fitted them: a generative model's result trained on
    # other codes (another machine's, its cache deleted) must not be skipped as finished, nor silently redone.
    out = tmp_path / "r"
    assert bench("run", "--models", "tiger", "--profile", "smoke", "--results-dir", str(out), cwd=tmp_path).returncode == 0
    path = out / "synthetic" / "tiger" / "seed0.json"
    record = json.loads(path.read_text())
    ids = record["generation"]["semantic_ids"]
    assert len(ids["fingerprint"]) == 16
    legacy = {k: v for k, v in ids.items() if k != "fingerprint"}  # a result written before fingerprints
    for used, clash in [(legacy, False), ({**ids, "fingerprint": "0" * 16}, True), ({**legacy, "collision_rate": 0.5}, True)]:
        path.write_text(json.dumps({**record, "generation": {**record["generation"], "semantic_ids": used}}))
        again = bench("run", "--models", "tiger", "--profile", "smoke", "--results-dir", str(out), cwd=tmp_path)
        dry = bench("run", "--models", "tiger", "--profile", "smoke", "--results-dir", str(out), "--dry-run", cwd=tmp_path)
        if clash:
            assert again.returncode == 2 and "was trained on other semantic IDs" in again.stderr, again.stderr
            assert f"this split's {ids['fingerprint']}" in again.stderr and again.stderr.strip().count("\n") == 0
            assert "blocked: a result on other semantic IDs is there" in dry.stdout
        else:
            assert again.returncode == 0 and "finished earlier, skipped" in again.stdout, again.stderr
            assert "finished" in dry.stdout
    # A checkpoint is named by the codes it trained on: one on these is resumed, one from before (or on
    # codes since refitted) is not.
    path.unlink()
    path.with_suffix(".npz").unlink()
    split, config = record["split_fingerprint"], record["config_hash"]
    planted = path.with_suffix(f".{split}-{config}-{ids['fingerprint']}.ckpt")
    planted.write_bytes(b"")
    dry = bench("run", "--models", "tiger", "--profile", "smoke", "--results-dir", str(out), "--dry-run", cwd=tmp_path)
    assert "to resume from its checkpoint" in dry.stdout, dry.stdout
    import torch

    stopper = {"best_epoch": 36, "best_score": 0.40234, "bad_epochs": 2, "patience": 10}
    torch.save({"epoch": 38, "stopper": stopper, "seconds": 8280.0}, planted)
    dry = bench("run", "--models", "tiger", "--profile", "smoke", "--results-dir", str(out), "--dry-run", cwd=tmp_path)
    where = ("to resume from its checkpoint, after epoch 39 (best epoch 37, validation NDCG@10 40.23%; "
             "2 epochs without a gain, early stopping at 10; 2.3 h of training so far)")
    assert where in dry.stdout, dry.stdout
    planted.rename(path.with_suffix(f".{split}-{config}.ckpt"))
    dry = bench("run", "--models", "tiger", "--profile", "smoke", "--results-dir", str(out), "--dry-run", cwd=tmp_path)
    assert "to resume" not in dry.stdout and "to run" in dry.stdout, dry.stdout
