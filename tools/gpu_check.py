"""The CUDA-path check run on a lent GPU machine (see README, "GPU check").

Prints: the device; a bf16 autocast matmul against fp32; then, for every registered model at the smoke
profile, where its parameters live after ``fit`` on CUDA, a few training epochs' time and its test
metrics, next to the same model on CPU. Exits non-zero if a model's weights are not on the GPU or a
deterministic model (pop, recent) ranks differently on the two devices.

    python tools/gpu_check.py [--models pop,recent,sasrec,bert4rec]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bench.config import from_dict, load_dataset, load_model, model_names
from bench.metrics import summarize
from bench.recommender import Context, rank_targets, resolve
from bench.runner import prepare_split, seed_everything


def fit_and_rank(name: str, split, ds, device: torch.device) -> tuple[np.ndarray, float, str]:
    spec = load_model(name, "smoke")
    cls = resolve(spec.target)
    config = from_dict(cls.Config, spec.params, spec.source)
    seed_everything(0)
    with tempfile.TemporaryDirectory() as work:
        ctx = Context(
            split=split, device=device, seed=0, work_dir=Path(work), progress=False,
            semantic_id_config=ds.semantic_ids, cache_dir=Path(work),
        )
        model = cls(config, ctx)
        started = time.perf_counter()
        model.fit(split)
        seconds = time.perf_counter() - started
        devices = {p.device for v in vars(model).values() if isinstance(v, torch.nn.Module) for p in v.parameters()}
        where = str(devices) if devices else "no parameters"
        ranks = rank_targets(model, split, split.test, 256, progress=False)
    return ranks, seconds, where


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default=",".join(m for m in model_names() if "-" not in m))
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("CUDA is not available here")
        return 1
    cuda = torch.device("cuda")
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name(0)}, bf16 supported: {torch.cuda.is_bf16_supported()}")
    a, b = torch.randn(512, 512, device=cuda), torch.randn(512, 512, device=cuda)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        low = a @ b
    rel = float((low.float() - a @ b).norm() / (a @ b).norm())
    print(f"bf16 autocast matmul: dtype {low.dtype}, relative error vs fp32 {rel:.2e}")

    ds = load_dataset("synthetic", "smoke")
    split = prepare_split(ds, Path(tempfile.mkdtemp()) / "splits")
    failures = 0
    for name in args.models.split(","):
        gpu_ranks, gpu_s, where = fit_and_rank(name, split, ds, cuda)
        cpu_ranks, cpu_s, _ = fit_and_rank(name, split, ds, torch.device("cpu"))
        g, c = summarize(gpu_ranks), summarize(cpu_ranks)
        same = np.array_equal(gpu_ranks, cpu_ranks)
        print(
            f"{name:10s} params on {where:22s} fit {gpu_s:6.1f}s gpu / {cpu_s:6.1f}s cpu   "
            f"N@10 gpu {g['ndcg@10']:.4f} cpu {c['ndcg@10']:.4f}   identical ranks: {same}"
        )
        if where not in ("no parameters", "{device(type='cuda', index=0)}"):
            failures += 1
        if name in ("pop", "recent") and not same:
            failures += 1
    print("GPU check:", "OK" if failures == 0 else f"{failures} problem(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
