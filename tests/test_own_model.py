"""The README's "bring your own model" recipe, run as written from a folder outside the checkout."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from tests.conftest import REPO
from tests.test_cli import bench


def _blocks() -> dict[str, str]:
    """The README's fenced blocks whose first line names a file (``# mymodels/…``), by that name; and the
    ``bash`` block that follows them."""
    text = (REPO / "README.md").read_text()
    section = text[text.index("**A model** is one Python file"):text.index("The contract")]
    blocks = re.findall(r"```(\w+)\n(.*?)```", section, flags=re.S)
    files = {body.splitlines()[0].lstrip("# ").strip(): body for lang, body in blocks if lang in ("python", "yaml")}
    files["command"] = next(body for lang, body in blocks if lang == "bash")
    return files


def test_the_readme_recipe_runs_and_the_model_appears_in_table1(tmp_path: Path) -> None:
    blocks = _blocks()
    for name in ("mymodels/models/history_pop.py", "mymodels/models/history-pop.yaml"):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(blocks[name])
    args = shlex.split(blocks["command"].strip())
    assert args[:3] == ["python", "-m", "bench"]
    result = bench(*args[3:], "--results-dir", str(tmp_path / "results"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    table = (tmp_path / "results" / "synthetic" / "table1.md").read_text().split("Metrics in")[0]
    rows = [line.split("|")[1].strip() for line in table.splitlines() if line.startswith("| ")][1:-1]
    assert rows == ["Pop", "Recent", "History-Pop"]  # built-in order first, then the user's model
