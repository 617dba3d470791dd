"""One OpenBLAS kernel for the computation whose result must not depend on the CPU: the semantic-ID fit.

OpenBLAS picks its kernels when it loads, from the CPU: SkylakeX (AVX-512) on a recent Intel Xeon, Zen
(which runs the Haswell kernels) on an AMD EPYC. Kernels order their sums differently, and the semantic-ID
fit carries that last-digit difference from ARPACK's products through k-means into other codes: on
taobao-ecomm-2019 the Xeon's SkylakeX kernels gave 18,548 distinct prefixes and the EPYC's 18,567. Both
CPUs give the EPYC's codes on the Haswell kernels (AVX2 and FMA, which every x86-64 CPU since 2013 has).

OpenBLAS reads its kernel from ``OPENBLAS_CORETYPE`` once, when it loads. So :func:`pin` sets that
variable before numpy is imported (``bench/__init__.py`` calls it first; worker processes inherit it), and
:func:`run_pinned` runs a computation in a fresh process when this one loaded OpenBLAS on another kernel
first (numpy imported before bench, or the variable set to something else). Nothing here imports numpy at
module level: importing it is what fixes the kernel.

torch does not use OpenBLAS (its CPU build calls MKL and oneDNN), so training is not covered: a long
training on another CPU family still drifts (README, Reproducibility).
"""

from __future__ import annotations

import multiprocessing
import os
import platform
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TypeVar

PINNED = "Haswell"
"""The kernel every x86-64 CPU with AVX2 and FMA runs the same way."""
VARIABLE = "OPENBLAS_CORETYPE"

T = TypeVar("T")


def can_pin() -> bool:
    """Whether this CPU can run the pinned kernels: x86-64 with AVX2 and FMA (read from /proc/cpuinfo; on
    another OS or processor nothing is pinned and the codes' fingerprint is the only guard)."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return {"avx2", "fma"} <= set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return False


def pin() -> None:
    """Ask OpenBLAS for the pinned kernels, unless the environment already names one; effective only before
    numpy (or SciPy) is first imported."""
    if can_pin():
        os.environ.setdefault(VARIABLE, PINNED)


def kernels() -> list[str]:
    """The kernel of each OpenBLAS numpy and SciPy loaded in this process (importing them if needed)."""
    import numpy  # noqa: F401 - loads numpy's OpenBLAS
    import scipy.linalg  # noqa: F401 - loads SciPy's
    from threadpoolctl import threadpool_info

    return [str(lib.get("architecture")) for lib in threadpool_info() if lib.get("internal_api") == "openblas"]


def pinned() -> bool:
    """Whether this process's OpenBLAS runs the pinned kernels (always True where none can be pinned)."""
    return not can_pin() or all(kernel == PINNED for kernel in kernels())


def run_pinned(fn: Callable[..., T], *args: object) -> T:
    """``fn(*args)`` on the pinned kernels: here when this process runs them, else in a fresh process started
    with them (``fn`` and ``args`` must pickle; the result comes back the same way)."""
    if pinned():
        return fn(*args)
    before = os.environ.get(VARIABLE)
    os.environ[VARIABLE] = PINNED  # the spawned process inherits the environment as it is when it starts
    try:
        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
            return pool.submit(fn, *args).result()
    finally:
        if before is None:
            del os.environ[VARIABLE]
        else:
            os.environ[VARIABLE] = before
