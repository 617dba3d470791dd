"""bench.blas: the semantic-ID fit runs on one OpenBLAS kernel, whatever the CPU and the import order."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bench.blas import PINNED, VARIABLE, can_pin
from tests.conftest import REPO

needs_avx2 = pytest.mark.skipif(not can_pin(), reason="the pinned kernels need an x86-64 CPU with AVX2 and FMA")


def _python(code: str, coretype: str | None) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != VARIABLE}
    if coretype is not None:
        env[VARIABLE] = coretype
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


@needs_avx2
def test_importing_bench_first_loads_openblas_on_the_pinned_kernel() -> None:
    # Without the pin an AVX-512 Xeon loads SkylakeX and an AMD EPYC Zen: other sums, other codes.
    seen = _python("import bench, numpy; from bench.blas import kernels; print(*kernels())", coretype=None)
    assert seen and set(seen) == {PINNED}


@needs_avx2
def test_the_environment_wins_and_the_fit_then_runs_in_a_process_on_the_pinned_kernel() -> None:
    # A process whose OpenBLAS chose another kernel (numpy imported first, or the variable set) is not
    # pinned: run_pinned computes in a fresh process on the pinned kernel, then restores the variable.
    code = (
        "import os, numpy, bench.blas as b\n"
        "print(*b.kernels(), b.pinned())\n"
        "print(*b.run_pinned(b.kernels))\n"
        "print(os.environ['OPENBLAS_CORETYPE'])"
    )
    here = "Sandybridge"  # AVX only: any CPU that can run the pinned kernels runs it
    assert _python(code, coretype=here) == [here, here, "False", PINNED, PINNED, here]


def test_nothing_is_pinned_where_the_cpu_cannot_run_the_kernels(monkeypatch: pytest.MonkeyPatch) -> None:
    from bench import blas

    monkeypatch.setattr(blas.platform, "machine", lambda: "aarch64")
    monkeypatch.delenv(VARIABLE, raising=False)
    assert not blas.can_pin() and blas.pinned()
    blas.pin()
    assert VARIABLE not in os.environ
    assert blas.run_pinned(os.getpid) == os.getpid()  # computed here, not in another process
