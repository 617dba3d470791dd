"""Stable short hashes of configurations, for cache keys and rerun checks."""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def config_hash(obj: Any) -> str:
    """12 hex digits of SHA-256 over the JSON of a dataclass (or plain data), keys sorted."""
    data = dataclasses.asdict(obj) if dataclasses.is_dataclass(obj) else obj
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:12]


def source_hash(path: Path) -> str:
    """SHA-256 of a Python file's code: its syntax tree without docstrings, so that a comment, a docstring
    or a reflowed line leaves a cache key (RCLRec's θ0: hours of CPU) valid while any change to what runs,
    a new method included, does not."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):  # fmt: skip
            node.body = body[1:] or [ast.Pass()]
    return hashlib.sha256(ast.dump(tree, include_attributes=False).encode()).hexdigest()


def sources_hash(paths: Sequence[Path]) -> str:
    """SHA-256 over the :func:`source_hash` of each file, in order: the code of a computation that runs in
    several files (RCLRec's θ0: the model, the backbone, the training loop, the split's windows)."""
    return hashlib.sha256("".join(source_hash(p) for p in paths).encode()).hexdigest()
