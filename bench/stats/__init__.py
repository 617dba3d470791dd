"""Paired significance tests over per-target metrics, found by name.

Each test is one module in this package with ``NAME``, ``LABEL`` (how a table's legend names it) and
``pvalue(a, b) -> float``, a two-sided p-value for paired per-target values ``a`` and ``b``; dropping a
new file here adds a test that ``--test NAME`` can select. :mod:`bench.stats.comparison` turns a reference
model and the others into :class:`Comparison` values (effect, p, Holm-corrected p) before any formatting.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

from bench.errors import BenchError

DEFAULT = "wilcoxon"


def available() -> dict[str, ModuleType]:
    """Test name → module, for every module of this package that defines ``pvalue``."""
    out = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if callable(getattr(module, "pvalue", None)):
            out[module.NAME] = module
    return out


def get(name: str) -> ModuleType:
    tests = available()
    if name not in tests:
        raise BenchError(f"unknown significance test '{name}' (known: {', '.join(sorted(tests))})")
    return tests[name]
