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
