"""Holm's (1979) step-down correction of a family of p-values, controlling the family-wise error rate.

With p sorted ascending as p_(1..m): adj_(i) = max_{j<=i} min(1, (m − j + 1) p_(j)). SciPy offers only the
FDR corrections (``false_discovery_control``: BH/BY), hence these few lines.
"""

from __future__ import annotations

import numpy as np


def holm(pvalues: list[float] | np.ndarray) -> np.ndarray:
    p = np.asarray(pvalues, dtype=np.float64)
    m = len(p)
    if m == 0:
        return p
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted = np.maximum.accumulate(scaled)
    out = np.empty(m)
    out[order] = adjusted
    return out
