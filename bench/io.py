"""Atomic file writes: a reader (or a rerun after a crash) never sees a half-written file."""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

UMASK = os.umask(0o022)
os.umask(UMASK)  # read, then restored: the process's umask, for the files written here


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~UMASK)  # mkstemp makes 0600; a result file gets what any new file would
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_bytes(path: str | os.PathLike[str], writer: Callable[[BinaryIO], None]) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        writer(fh)


def write_text(path: str | os.PathLike[str], text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def write_npz(path: str | os.PathLike[str], **arrays: np.ndarray) -> None:
    # np.savez appends ".npz" to names without it, so hand it an open file instead of the temp path.
    write_bytes(path, lambda fh: np.savez_compressed(fh, **arrays))


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def failed_path(result: Path) -> Path:
    """``seed<S>.failed.json`` beside the run's result ``seed<S>.json``: the record of its last failure."""
    return result.with_suffix(".failed.json")


def error_log_path(result: Path) -> Path:
    """``seed<S>.error.log`` beside the run's result ``seed<S>.json``: the traceback of its last failure."""
    return result.with_suffix(".error.log")


def result_files(folder: Path, pattern: str = "*/") -> list[Path]:
    """The finished runs' ``seed<S>.json`` under ``folder`` (``pattern`` + the file name, e.g. ``*/`` for one
    level down), sorted; a failure's ``seed<S>.failed.json`` is not a result."""
    return sorted(f for f in folder.glob(pattern + "seed*.json") if re.fullmatch(r"seed\d+\.json", f.name))
