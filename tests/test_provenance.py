"""bench.provenance.commit: the commit, and ``+dirty`` only for changes to code, not to results."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bench.provenance import commit


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "bench").mkdir()
    (tmp_path / "results").mkdir()
    (tmp_path / "bench" / "model.py").write_text("x = 1\n")
    (tmp_path / "results" / "REPORT.md").write_text("# report\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "init")
    commit.cache_clear()
    return tmp_path


def test_clean_tree_is_the_commit(repo: Path) -> None:
    assert commit(repo) == _git(repo, "rev-parse", "HEAD")[:12]


def test_rewritten_results_and_untracked_files_are_not_dirty(repo: Path) -> None:
    (repo / "results" / "REPORT.md").write_text("# report, rewritten by a study\n")
    (repo / "notes.txt").write_text("untracked\n")
    assert not commit(repo).endswith("+dirty")


def test_changed_code_is_dirty(repo: Path) -> None:
    (repo / "bench" / "model.py").write_text("x = 2\n")
    assert commit(repo) == _git(repo, "rev-parse", "HEAD")[:12] + "+dirty"


def test_outside_git_is_unknown(tmp_path: Path) -> None:
    commit.cache_clear()
    assert commit(tmp_path / "nowhere") == "unknown"
