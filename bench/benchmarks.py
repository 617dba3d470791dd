"""Benchmark commands: they print measured ratios; nothing here is asserted by a test.

``python -m bench benchmark beam``: users per second of the constrained beam search with the decoder KV
cache against a decoder that recomputes the whole prefix over a per-beam copy of the memory at every step
(the way MBGen's official code decodes), on the same inputs, with a check that both return the same lists.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from baselines.tiger import TIGERConfig, TIGERNet
from bench.config import Configs
from bench.nn.beam import PrefixTrie
from bench.plan import Request
from bench.runner import cache_dir, prepare_split
from bench.semantic_ids import load_or_fit


def beam(users: int, width: int, k: int, results_dir: Path, device: torch.device, repeats: int = 3) -> dict[str, float]:
    ds = Configs().dataset("synthetic", "cpu")
    split = prepare_split(ds, cache_dir(results_dir), lambda message: None)[0]
    ids = load_or_fit(split, ds.semantic_ids, cache_dir(results_dir))
    torch.manual_seed(0)
    net = TIGERNet(TIGERConfig(), ids.vocab_sizes).to(device).eval()  # the paper-size TIGER, random weights
    trie = PrefixTrie.from_codes(ids.codes, ids.vocab_sizes).to(device)
    targets = split.test.take(slice(0, users))
    h = split.histories(targets, TIGERConfig().max_items)
    items = torch.as_tensor(h.items, device=device)
    codes = torch.as_tensor(ids.codes, device=device)[items.clamp(min=0)]
    users_t = torch.as_tensor(h.users, device=device)

    def run(use_cache: bool) -> tuple[float, torch.Tensor]:
        best = float("inf")
        with torch.no_grad():
            for _ in range(repeats):
                started = time.perf_counter()
                memory, pad = net.encode(codes, items >= 0, users_t)
                start = net.bos.expand(len(items), -1, -1)
                out, _ = net.codes.generate(memory, pad, start, trie, width, k, use_cache=use_cache)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                best = min(best, time.perf_counter() - started)
        return len(items) / best, out

    cached, a = run(True)
    recomputed, b = run(False)
    return {
        "users": len(items),
        "items": split.n_items,
        "beam_width": width,
        "cached_users_per_s": cached,
        "recompute_users_per_s": recomputed,
        "speedup": cached / recomputed,
        "same_lists": bool(torch.equal(a, b)),
    }


def workers(request: Request, models: list[str] | None, workers: int, device: torch.device) -> dict[str, object]:
    """``run --models …`` (None: ``--all``) of ``request`` with ``--workers 1`` and then with ``--workers N``, back to back in fresh
    results folders (the split's preparation and the cluster's start-up included in each), and whether
    every rank file came out byte-identical."""
    import dataclasses
    import tempfile

    from bench import runner
    from bench.plan import run_plan

    seconds, ranks, failed = {}, {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in (1, workers):
            folder = Path(tmp) / f"workers{n}"
            started = time.perf_counter()
            plan = run_plan(dataclasses.replace(request, results_dir=folder), models)
            failed[n] = runner.run(plan, device, progress=False, workers=n)
            seconds[n] = time.perf_counter() - started
            ranks[n] = {p.relative_to(folder): p.read_bytes() for p in sorted(folder.glob("*/*/seed*.npz"))}
    return {
        "jobs": len(plan.jobs),
        "workers": workers,
        "seconds_1": seconds[1],
        f"seconds_{workers}": seconds[workers],
        "ratio": seconds[workers] / seconds[1],
        "rank_files": len(ranks[1]),
        "identical": ranks[1] == ranks[workers] and len(ranks[1]) > 0,
        "failed": sorted(set(failed[1]) | set(failed[workers])),
    }
