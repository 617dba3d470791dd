"""Where a result came from: the code's commit (and whether the tree had uncommitted changes), package
versions and the hardware, recorded in every result and in the study's report."""

from __future__ import annotations

import functools
import platform
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@functools.cache
def commit(repo: Path = REPO) -> str:
    """The checkout's commit, with ``+dirty`` when tracked files outside ``results/`` differ from it; ``unknown``
    outside git.

    ``results/`` is left out because it is what the harness writes: the committed studies live there and a study
    run with the default ``--results-dir`` rewrites their reports as it goes, which says nothing about the code
    that computed the next run."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)results"],
                               cwd=repo, capture_output=True, text=True, timeout=10)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if head.returncode != 0:
        return "unknown"
    return head.stdout.strip()[:12] + ("+dirty" if dirty.stdout.strip() else "")


def versions() -> dict[str, str]:
    """Python and the packages the numbers depend on, and the commit."""
    import numpy as np
    import torch

    out = {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__, "commit": commit()}
    for name in ("pandas", "scipy", "recbole", "distributed"):
        module = sys.modules.get(name)
        if module is not None:
            out[name] = getattr(module, "__version__", "?")
    return out


@functools.cache
def hardware() -> dict[str, str]:
    """The CPU model and core count, and the GPU when there is one."""
    import os

    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    out = {"cpu": cpu, "cores": str(os.cpu_count())}
    if torch.cuda.is_available():
        out["gpu"] = torch.cuda.get_device_name(0)
    return out
