"""Random streams: every training stage seeds Python, NumPy and torch from (run seed, stage name) at its
start, so what a stage draws never depends on what ran before it in the process (a cached or resumed
earlier stage, another job in the same worker)."""

from __future__ import annotations

import hashlib
import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (CPU and every CUDA device)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def stage_seed(seed: int, stage: str) -> int:
    """A 31-bit seed for one stage of one run: a hash of (seed, stage), so stages draw unrelated streams.

    >>> stage_seed(0, "train") == stage_seed(0, "train") != stage_seed(0, "pretrain")
    True
    """
    return int.from_bytes(hashlib.sha256(f"{seed}/{stage}".encode()).digest()[:4], "big") & 0x7FFF_FFFF
