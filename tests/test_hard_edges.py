"""Hard edges: every failure either stops with one line (exit 2, nothing written) or is a counted, reported
failure of one run (exit 1, no result); none changes the tables silently."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO
from tests.test_cli import bench


def _config_dir(tmp_path: Path) -> Path:
    configs = tmp_path / "configs"
    (configs / "models").mkdir(parents=True)
    (configs / "models" / "diverging.yaml").write_text("class: tests.broken_model:Diverging\ndisplay: Diverging\n")
    return configs


def test_a_run_whose_loss_turns_nan_fails_and_leaves_no_result(tmp_path: Path) -> None:
    out = tmp_path / "r"
    result = bench("run", "--models", "pop,diverging", "--profile", "smoke", "--results-dir", str(out),
                   "--config-dir", str(_config_dir(tmp_path)), cwd=tmp_path)  # fmt: skip
    assert result.returncode == 1
    line = next(x for x in result.stderr.splitlines() if x.startswith("✗"))
    assert "✗ diverging seed0: NumericalError: diverging, epoch 2: training loss is nan at batch 1 (details in" in line
    folder = out / "synthetic" / "diverging"
    assert not (folder / "seed0.json").exists() and not (folder / "seed0.npz").exists()
    assert "NumericalError" in (folder / "seed0.error.log").read_text()
    table = (out / "synthetic" / "table1.md").read_text()
    assert "| Diverging" not in table and "Failed runs (no result, so not in the table): Diverging seed 0: NumericalError" in table


def test_values_that_can_only_break_a_run_are_refused_before_training(tmp_path: Path) -> None:
    for args in (["sweep", "--param", "tau", "--values", "0"], ["run", "--models", "sasrec", "--set", "sasrec.learning_rate=-1"],
                 ["run", "--models", "hstu", "--set", "hstu.dropout=1.0"]):  # fmt: skip
        result = bench(*args, "--profile", "smoke", "--results-dir", str(tmp_path / "r"), cwd=tmp_path)
        assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert not (tmp_path / "r").exists()


def test_a_results_dir_that_is_a_file_is_one_line_exit_2(tmp_path: Path) -> None:
    (tmp_path / "r").write_text("not a folder")
    result = bench("run", "--models", "pop", "--profile", "smoke", "--results-dir", str(tmp_path / "r"), cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "r/synthetic" in result.stderr, result.stderr


def test_a_refused_run_writes_nothing_not_even_its_split(tmp_path: Path) -> None:
    out = tmp_path / "r"
    assert bench("run", "--models", "pop", "--profile", "smoke", "--results-dir", str(out), cwd=tmp_path).returncode == 0
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    clash = bench("run", "--models", "pop", "--profile", "cpu", "--results-dir", str(out), cwd=tmp_path)
    assert clash.returncode == 2 and "another split" in clash.stderr
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before


def test_two_commands_on_one_results_dir_train_each_job_once(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    args = [sys.executable, "-m", "bench", "run", "--models", "pop,recent,sasrec", "--profile", "smoke", "--results-dir", str(tmp_path / "r")]
    # Cache the split first, so both commands reach the lock at about the same moment.
    assert bench("data", "stats", "--profile", "smoke", "--results-dir", str(tmp_path / "r"), cwd=tmp_path).returncode == 0
    procs = [subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    stdout = "".join(o for o, _ in outputs)
    assert stdout.count(": R@10 ") == 3 and stdout.count("finished earlier, skipped") == 3


def test_a_second_command_with_no_wait_exits_2(tmp_path: Path) -> None:
    from filelock import FileLock

    folder = tmp_path / "r" / "synthetic"
    folder.mkdir(parents=True)
    with FileLock(folder / ".lock"):
        result = bench("run", "--models", "pop", "--profile", "smoke", "--results-dir", str(tmp_path / "r"), "--no-wait", cwd=tmp_path)
    assert result.returncode == 2 and "another bench command is writing these results" in result.stderr
    assert not (folder / "pop").exists()


def test_leftovers_are_removed_and_files_follow_the_umask(tmp_path: Path) -> None:
    out = tmp_path / "r"
    leftover = out / "synthetic" / "pop" / ".seed0.json.x1y2.tmp"
    leftover.parent.mkdir(parents=True)
    leftover.write_text("half a file")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "bench", "run", "--models", "pop", "--profile", "smoke", "--results-dir", str(out)]
    result = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
                            preexec_fn=lambda: os.umask(0o022))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert not leftover.exists()
    for name in ("seed0.json", "seed0.npz"):
        assert (out / "synthetic" / "pop" / name).stat().st_mode & 0o777 == 0o644


def test_data_stats_and_results_report_what_preprocessing_dropped(tmp_path: Path) -> None:
    data = tmp_path / "d"
    data.mkdir()
    t0 = 1_600_000_000
    rows = "".join(f"u{u},i{(u + t) % 9},{'buy' if t in (4, 6) else 'click'},{t0 + t}\n" for u in range(8) for t in range(8))
    duplicates = "".join(rows.splitlines(keepends=True)[:5])
    (data / "interactions.csv").write_text("user_id,item_id,behavior,timestamp\n" + rows + duplicates)
    stats = bench("data", "stats", "--dataset", "csv", "--data", str(data), "--profile", "smoke", "--json",
                  "--results-dir", str(tmp_path / "r"), cwd=tmp_path)  # fmt: skip
    assert stats.returncode == 0, stats.stderr
    record = json.loads(stats.stdout)
    assert record["dropped_duplicates"] == 5 and record["dropped_bad_timestamps"] == 0
    assert record["dropped_after_test_target"] == 8  # the click after each user's last purchase
    run = bench("run", "--models", "pop", "--dataset", "csv", "--data", str(data), "--profile", "smoke",
                "--results-dir", str(tmp_path / "r"), cwd=tmp_path)  # fmt: skip
    assert run.returncode == 0, run.stderr
    result = json.loads((tmp_path / "r" / "d" / "pop" / "seed0.json").read_text())
    assert result["preparation"]["dropped"]["duplicates"] == record["dropped_duplicates"]


def test_an_unreadable_split_cache_is_one_line_exit_2(tmp_path: Path) -> None:
    out = tmp_path / "r"
    assert bench("run", "--models", "pop", "--profile", "smoke", "--results-dir", str(out), cwd=tmp_path).returncode == 0
    cached = next((out / ".cache" / "splits").glob("*.npz"))
    cached.write_bytes(cached.read_bytes()[:100])  # truncated, as by a full disk
    result = bench("run", "--models", "recent", "--profile", "smoke", "--results-dir", str(out), cwd=tmp_path)
    assert result.returncode == 2 and "cached split is unreadable" in result.stderr and "Traceback" not in result.stderr
