"""Command line: argument parsing and error-to-exit-code mapping only; the work is in the modules.

Exit codes: 0 success, 1 some model failed (the others still ran), 2 bad input or usage, 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.errors import BenchError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, no usage dump
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def _common(p: argparse.ArgumentParser, profile: bool = True) -> None:
    p.add_argument("--dataset", default="synthetic", help="a name from configs/datasets (default: synthetic)")
    p.add_argument("--data", default=None, help="the data file or folder, for formats that read one")
    if profile:
        p.add_argument("--profile", default="cpu", help="smoke | cpu | paper (configs/profiles)")


def _models(value: str) -> list[str]:
    names = [v.strip() for v in value.split(",") if v.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected a comma-separated list of model names")
    return names


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m bench", description="Reproducibility harness for RCLRec (arXiv 2603.28124).")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="train and evaluate models on one shared split, then write Table 1")
    which = run.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help="every Table 1 model (configs/models without '-')")
    which.add_argument("--models", type=_models, help="comma-separated model names, e.g. pop,sasrec")
    _common(run)
    run.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1 per model (default: the profile's)")
    run.add_argument("--results-dir", type=Path, default=Path("results"))
    run.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when present)")
    run.add_argument("--no-report", action="store_true", help="skip writing the tables at the end")
    run.add_argument("--tuned", action="store_true", help="use each model's configuration selected by 'bench tune'")

    tune = sub.add_parser("tune", help="every model's tuning grid (seed 0), selected on validation NDCG@10")
    which = tune.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help="every Table 1 model with a 'tune' grid")
    which.add_argument("--models", type=_models, help="comma-separated model names")
    _common(tune)
    tune.add_argument("--results-dir", type=Path, default=Path("results"))
    tune.add_argument("--device", default=None)

    ablate = sub.add_parser("ablate", help="RCLRec and its three ablations, then Table 2")
    _common(ablate)
    ablate.add_argument("--seeds", type=int, default=None)
    ablate.add_argument("--results-dir", type=Path, default=Path("results"))
    ablate.add_argument("--device", default=None)

    sweep = sub.add_parser("sweep", help="one RCLRec parameter over several values, then Figure 3")
    sweep.add_argument("--param", required=True, help="a numeric field of the model's config: k, tau, lam, margin, …")
    sweep.add_argument("--values", required=True, help="comma-separated values, e.g. 1,2,3,4,5,6")
    sweep.add_argument("--model", default="rclrec")
    _common(sweep)
    sweep.add_argument("--seeds", type=int, default=None)
    sweep.add_argument("--results-dir", type=Path, default=Path("results"))
    sweep.add_argument("--device", default=None)

    report = sub.add_parser("report", help="write Table 1 (Markdown, LaTeX, stats) from existing results")
    report.add_argument("--dataset", default="synthetic")
    report.add_argument("--results-dir", type=Path, default=Path("results"))

    data = sub.add_parser("data", help="inspect a dataset")
    data_sub = data.add_subparsers(dest="data_command", required=True, parser_class=_Parser)
    stats = data_sub.add_parser("stats", help="users, items, rows per behavior, targets, repeat share")
    _common(stats)
    stats.add_argument("--results-dir", type=Path, default=Path("results"), help="where the split cache lives")
    stats.add_argument("--json", action="store_true", help="print JSON instead of a table")
    bench_cmd = sub.add_parser("benchmark", help="speed benchmarks that print ratios")
    bench_sub = bench_cmd.add_subparsers(dest="benchmark", required=True, parser_class=_Parser)
    beam = bench_sub.add_parser("beam", help="cached vs recomputing beam search (users/s and speed-up)")
    beam.add_argument("--users", type=int, default=256)
    beam.add_argument("--beam", type=int, default=20)
    beam.add_argument("--threads", type=int, default=1)
    beam.add_argument("--device", default=None)
    beam.add_argument("--results-dir", type=Path, default=Path("results"), help="where the split cache lives")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _dispatch(args)
    except BenchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished runs are kept; rerun the same command to resume", file=sys.stderr)
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    import torch

    from bench import report, runner
    from bench.config import load_dataset, model_names

    device = _device(getattr(args, "device", None))
    table1_models = report.table_order([m for m in model_names() if "-" not in m])
    if args.command == "run":
        models = table1_models if args.all else args.models
        variants = _tuned(models, args) if args.tuned else None
        failed = runner.run(models, args.dataset, args.data, args.profile, args.seeds, args.results_dir, device,
                            variants=variants)  # fmt: skip
        if args.no_report:
            return _failures(failed)
        return _finish(failed, lambda: report.table1(args.results_dir, args.dataset))
    if args.command == "tune":
        from bench import tuning

        models = table1_models if args.all else args.models  # models without a grid are skipped
        failed = tuning.tune(models, args.dataset, args.data, args.profile, args.results_dir, device)
        print(f"wrote {args.results_dir / args.dataset / 'tuning.md'}")
        return _failures(failed)
    if args.command == "ablate":
        failed = runner.run(report.ABLATIONS, args.dataset, args.data, args.profile, args.seeds, args.results_dir, device)
        return _finish(failed, lambda: report.table2(args.results_dir, args.dataset))
    if args.command == "sweep":
        from bench import figure

        values = _sweep_values(args.model, args.param, args.values, args.profile)
        variants = {figure.sweep_name(args.model, args.param, v): (args.model, {args.param: v}) for v in values}
        failed = runner.run(list(variants), args.dataset, args.data, args.profile, args.seeds, args.results_dir, device,
                            variants=variants)  # fmt: skip
        return _finish(failed, lambda: figure.figure3(args.results_dir, args.dataset, args.model, args.param, values))
    if args.command == "report":
        _print_paths(report.table1(args.results_dir, args.dataset))
        return 0
    if args.command == "data" and args.data_command == "stats":
        ds = load_dataset(args.dataset, args.profile, args.data)
        quiet = (lambda message: None) if args.json else runner.say
        split = runner.prepare_split(ds, runner.cache_dir(args.results_dir), quiet)
        st = split.stats()
        if args.json:
            print(json.dumps(st, indent=2))
        else:
            from tabulate import tabulate

            rows = [(k, f"{v:.4f}" if isinstance(v, float) else (", ".join(v) if isinstance(v, list) else v)) for k, v in st.items()]
            print(tabulate(rows, headers=[ds.name, "value"], tablefmt="simple", disable_numparse=True))
        return 0
    if args.command == "benchmark":
        from bench import benchmarks

        torch.set_num_threads(args.threads)
        device = device or runner.default_device()
        out = benchmarks.beam(args.users, args.beam, 10, args.results_dir, device)
        print(
            f"beam search, {out['users']} users, {out['items']} items, beam {out['beam_width']}, {device}, "
            f"{args.threads} thread(s):\n"
            f"  with KV cache     {out['cached_users_per_s']:8.1f} users/s\n"
            f"  recomputing       {out['recompute_users_per_s']:8.1f} users/s\n"
            f"  speed-up          {out['speedup']:8.2f}x   (same lists: {out['same_lists']})"
        )
        return 0
    raise AssertionError(args)


def _tuned(models: list[str], args: argparse.Namespace) -> dict[str, tuple[str, dict]]:
    """Each model's selected configuration (models without a grid run as configured); the selected
    point's seed-0 trial is reused instead of trained again."""
    from bench import tuning

    variants = {}
    for model in models:
        chosen = tuning.selected(args.results_dir, args.dataset, model, args.profile)
        if chosen is not None:
            variants[model] = (model, chosen[0])
            tuning.reuse_trial(args.results_dir, args.dataset, model, chosen[1])
    return variants


def _device(name: str | None):  # noqa: ANN202 - torch imported lazily
    import torch

    if name is None:
        return None
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BenchError(f"--device {name}: CUDA is not available on this machine")
    return device


def _finish(failed: list[str], write) -> int:  # noqa: ANN001
    """Write the tables or figure from whatever finished; when nothing did, the failures are the news."""
    try:
        _print_paths(write())
    except BenchError:
        if not failed:
            raise
    return _failures(failed)


def _failures(failed: list[str]) -> int:
    if failed:
        print(f"error: {len(failed)} run(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def _sweep_values(model: str, param: str, text: str, profile: str) -> list[float | int]:
    """Parse --values by the type of the model config's field; only numeric fields can be swept."""
    import dataclasses
    import typing

    from bench.config import load_model
    from bench.recommender import resolve

    config = resolve(load_model(model, profile).target).Config
    hints = typing.get_type_hints(config)
    if param not in hints or hints[param] not in (int, float):
        numeric = [f.name for f in dataclasses.fields(config) if hints[f.name] in (int, float)]
        raise BenchError(f"--param {param}: not a numeric parameter of {model} (numeric: {', '.join(numeric)})")
    try:
        values = [hints[param](v.strip()) for v in text.split(",") if v.strip()]
    except ValueError:
        raise BenchError(f"--values {text}: expected comma-separated {hints[param].__name__} values") from None
    if not values:
        raise BenchError("--values: expected at least one value")
    return values


def _print_paths(paths: dict[str, Path]) -> None:
    for path in paths.values():
        print(f"wrote {path}")
