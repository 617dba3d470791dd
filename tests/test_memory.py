"""bench.memory: out of memory is one line naming the step and what it needed, from a step or the CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench import memory
from bench.errors import BenchError
from tests.conftest import REPO


def test_a_step_names_itself_and_the_size_numpy_could_not_allocate() -> None:
    with pytest.raises(BenchError) as info, memory.step("removing duplicate rows from 55 rows"):
        np.empty(2**50, dtype=np.int64)  # 9 PB: refused by the allocator, a real numpy MemoryError
    message = str(info.value)
    assert message.startswith("out of memory while removing duplicate rows from 55 rows: it needed 9007199.3 GB more")
    assert "\n" not in message and "available" in message


def test_other_errors_pass_through() -> None:
    with pytest.raises(KeyError), memory.step("anything"):
        raise KeyError("x")


def test_the_cli_says_one_line_when_a_log_does_not_fit(tmp_path: Path) -> None:
    """`data stats` under an address-space limit just above what the interpreter already holds: exit 2,
    one line naming the step, no traceback."""
    subprocess.run([sys.executable, str(REPO / "tools" / "make_large_logs.py"), "--out", str(tmp_path), "--which", "tmall",
                    "--scale", "0.01"], check=True, capture_output=True)  # fmt: skip
    script = (
        "import resource, sys\n"
        "import torch, pandas, pyarrow.csv, bench.cli, bench.runner, bench.data.loaders\n"
        "size = int(open('/proc/self/statm').read().split()[0]) * resource.getpagesize()\n"
        "resource.setrlimit(resource.RLIMIT_AS, (size + (48 << 20),) * 2)\n"
        "sys.exit(bench.cli.main(sys.argv[1:]))\n"
    )
    args = ["data", "stats", "--dataset", "tmall", "--data", str(tmp_path / "tmall"), "--profile", "paper",
            "--results-dir", str(tmp_path / "r")]  # fmt: skip
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, cwd=REPO)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2, done.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: out of memory while "), done.stderr[-2000:]
