from __future__ import annotations

from pathlib import Path

from bench.hashing import config_hash, source_hash

CODE = '''"""A module."""


def loss(x):
    """The loss."""
    return x * 2  # doubled
'''


def _hash(tmp_path: Path, text: str) -> str:
    path = tmp_path / "model.py"
    path.write_text(text)
    return source_hash(path)


def test_comments_docstrings_and_layout_leave_the_source_hash_alone(tmp_path: Path) -> None:
    same = '''"""Another docstring, longer."""
# a comment


def loss(x):
    """Reworded."""
    return (x
            * 2)
'''
    no_docstrings = "def loss(x):\n    return x * 2\n"
    assert _hash(tmp_path, CODE) == _hash(tmp_path, same) == _hash(tmp_path, no_docstrings)


def test_any_change_to_what_runs_changes_the_source_hash(tmp_path: Path) -> None:
    base = _hash(tmp_path, CODE)
    assert _hash(tmp_path, CODE.replace("x * 2", "x * 3")) != base
    assert _hash(tmp_path, CODE + "\n\ndef other():\n    return 1\n") != base  # a new function
    assert _hash(tmp_path, CODE.replace('"""The loss."""', '"""The loss."""\n    x = x + 0')) != base
    # A function whose only statement is its docstring keeps a body; a string that is not first is code.
    assert _hash(tmp_path, 'def f():\n    """Doc."""\n') == _hash(tmp_path, "def f():\n    pass\n")
    assert _hash(tmp_path, 'def f():\n    pass\n    "not a docstring"\n') != _hash(tmp_path, "def f():\n    pass\n")


def test_config_hash_ignores_key_order() -> None:
    assert config_hash({"a": 1, "b": 2}) == config_hash({"b": 2, "a": 1}) != config_hash({"a": 1, "b": 3})
    assert len(config_hash({"a": 1})) == 12
