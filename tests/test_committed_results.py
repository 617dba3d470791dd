"""The committed studies (results/<log>/): tables, reports and claims regenerate byte for byte from the
committed result files, so what the README quotes and the data behind it can never drift apart."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bench import study
from bench.plan import Request
from bench.runner import SPLIT_RECORD
from tests.conftest import REPO

LOGS = ("taobao-ecomm-2019", "tmall-2014-brands")
GENERATED = (".md", ".tex", ".json", ".csv")
"""The study's own outputs at the top of a log's folder; figures (.png, .pdf) are drawn from the same data
but carry renderer details, so their .csv is what is compared."""


@pytest.mark.parametrize("log", LOGS)
def test_committed_tables_regenerate_byte_for_byte(log: str, tmp_path: Path) -> None:
    committed = REPO / "results" / log
    if not (committed / "REPORT.md").exists():
        pytest.skip(f"{committed}: no committed study")
    copy = tmp_path / "results" / log
    shutil.copytree(committed, copy)
    # split.json is an input, like the runs: the split's own record, which the report describes the log from
    outputs = sorted(p.name for p in committed.iterdir() if p.is_file() and p.suffix in GENERATED and p.name != SPLIT_RECORD)
    assert "REPORT.md" in outputs and "table1.md" in outputs and (committed / SPLIT_RECORD).exists()
    for name in outputs:  # only the runs' own files (and the tuning selections, their inputs) remain
        (copy / name).unlink()
    req = Request(dataset="csv", data=f"../shared/data/{log}", profile="cpu", results_dir=tmp_path / "results", seeds=3)
    study.write(copy, req)
    for name in outputs:
        assert (copy / name).read_bytes() == (committed / name).read_bytes(), f"{log}/{name} differs when regenerated"
