"""The CUDA-path check run on a lent GPU machine (see README, "GPU").

Prints: the device; a bf16 autocast matmul against fp32; then one OK/FAIL line per Table 1 model at the
smoke profile (the plan of ``bench run --all --profile smoke``, so MBGen and PBAT too): where its parameters
live after ``fit`` on CUDA, its fit time and test NDCG@10 next to the same job on CPU. A model fails if its
weights are not on the GPU, if it finds no target on the GPU, or if a deterministic model (pop, recent)
ranks differently on the two devices; the exit code is the number of failures (0 = all OK).

    python tools/gpu_check.py [--models pop,recent,sasrec,bert4rec]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from bench.metrics import summarize
from bench.plan import Job, Plan, Request, run_plan
from bench.recommender import Context
from bench.runner import cache_dir, fit_and_rank, prepare_split


def fit_and_rank_on(plan: Plan, job: Job, split, device: torch.device) -> tuple[np.ndarray, float, str]:
    with tempfile.TemporaryDirectory() as work:
        ctx = Context(split=split, device=device, seed=job.seed, work_dir=Path(work), progress=False,
                      semantic_id_config=plan.dataset.semantic_ids, cache_dir=Path(work))  # fmt: skip
        model, _, ranks, seconds = fit_and_rank(job, ctx, plan.profile.eval_batch_size)
        devices = {p.device for v in vars(model).values() if isinstance(v, torch.nn.Module) for p in v.parameters()}
    return ranks, seconds["train"], str(devices) if devices else "no parameters"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default=None, help="comma-separated (default: every Table 1 model)")
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

    plan = run_plan(Request(profile="smoke", seeds=1), args.models.split(",") if args.models else None)
    split = prepare_split(plan.dataset, cache_dir(Path(tempfile.mkdtemp())))[0]
    failures = 0
    for job in plan.jobs:
        gpu_ranks, gpu_s, where = fit_and_rank_on(plan, job, split, cuda)
        cpu_ranks, cpu_s, _ = fit_and_rank_on(plan, job, split, torch.device("cpu"))
        g, c = summarize(gpu_ranks), summarize(cpu_ranks)
        same = np.array_equal(gpu_ranks, cpu_ranks)
        problems = []
        if where not in ("no parameters", "{device(type='cuda', index=0)}"):
            problems.append(f"weights on {where}")
        if job.model in ("pop", "recent") and not same:
            problems.append("a deterministic model ranks differently on the two devices")
        if not np.isfinite(g["ndcg@10"]) or g["ndcg@10"] <= 0:
            problems.append("no target found on the GPU")
        failures += bool(problems)
        print(
            f"{'FAIL' if problems else 'OK  '} {job.name:10s} params on {where:22s} fit {gpu_s:6.1f}s gpu / {cpu_s:6.1f}s cpu   "
            f"N@10 gpu {g['ndcg@10']:.4f} cpu {c['ndcg@10']:.4f}   identical ranks: {same}"
            + (f"   ({'; '.join(problems)})" if problems else "")
        )
    print("GPU check:", "OK" if failures == 0 else f"{failures} model(s) FAIL")
    return min(failures, 100)


if __name__ == "__main__":
    sys.exit(main())
