"""Command line: argument parsing and error-to-exit-code mapping only; the work is in the modules.

Exit codes: 0 success, 1 some model failed (the others still ran), 2 bad input or usage, 130 interrupted.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from bench.errors import BenchError

if TYPE_CHECKING:  # the CLI imports the harness lazily, so that --help and bad arguments answer at once
    from collections.abc import Callable

    import torch

    from bench.config import DatasetConfig
    from bench.data.split import Split
    from bench.plan import Plan, Request


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, no usage dump
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def _common(p: argparse.ArgumentParser, profile: bool = True) -> None:
    p.add_argument("--dataset", default="synthetic", help="a dataset config name, e.g. synthetic, tmall, taobao, csv")
    p.add_argument("--data", default=None, help="the data file or folder, for formats that read one")
    p.add_argument("--name", default=None,
                   help="the log's name in results and captions (default: a csv folder's name, else --dataset)")
    if profile:
        p.add_argument("--profile", default="cpu", help="smoke | cpu | paper, or your own profiles/NAME.yaml")
    p.add_argument("--config-dir", action="append", default=[], metavar="DIR",
                   help="a folder with models/, datasets/, profiles/ that add to or override the built-in configs "
                   "(repeatable; also BENCH_CONFIG_PATH)")  # fmt: skip
    p.add_argument("--results-dir", type=Path, default=Path("results"))


def _training(p: argparse.ArgumentParser, seeds: bool = True, tuned: bool = True, test: bool = True) -> None:
    if seeds:
        p.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1 per model (default: the profile's)")
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when present)")
    _set(p)
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="jobs in parallel: a local Dask cluster of N one-thread worker processes (default: one per "
                   "core; 1 runs in this process, for debugging)")  # fmt: skip
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run the jobs on an existing Dask cluster (e.g. tcp://host:8786) instead of a local one")
    p.add_argument("--dry-run", action="store_true",
                   help="print the jobs, what a run would do with each and its expected time; write nothing")
    p.add_argument("--no-wait", action="store_true",
                   help="exit 2 instead of waiting when another command is writing the same results")
    if tuned:
        p.add_argument("--tuned", action="store_true", help="use each model's configuration selected by 'bench tune'")
    if test:
        _test(p)


def _set(p: argparse.ArgumentParser) -> None:
    p.add_argument("--set", action="append", default=[], metavar="MODEL.FIELD=VALUE", dest="sets",
                   help="change one config field for this command (repeatable), e.g. --set sasrec.learning_rate=0.003")


def _test(p: argparse.ArgumentParser) -> None:
    p.add_argument("--test", default="wilcoxon", help="the significance test: wilcoxon, ttest, permutation")


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
    which.add_argument("--all", action="store_true", help="every model whose YAML says 'table: table1'")
    which.add_argument("--models", type=_models, help="comma-separated model names, e.g. pop,sasrec")
    _common(run)
    _training(run)
    run.add_argument("--no-report", action="store_true", help="skip writing the tables at the end")

    tune = sub.add_parser("tune", help="every model's tuning grid (seed 0), selected on validation NDCG@10")
    which = tune.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help="every Table 1 model with a 'tune' grid")
    which.add_argument("--models", type=_models, help="comma-separated model names")
    _common(tune)
    _training(tune, seeds=False, tuned=False, test=False)

    ablate = sub.add_parser("ablate", help="a model and its Table 2 variants ('extends' + 'table: table2'), then Table 2")
    ablate.add_argument("--model", default="rclrec")
    _common(ablate)
    _training(ablate)

    sweep = sub.add_parser("sweep", help="one parameter over several values, then Figure 3 (k) or sweep-<param>")
    sweep.add_argument("--param", required=True, help="a numeric field of the model's config: k, tau, lam, margin, …")
    sweep.add_argument("--values", required=True, help="comma-separated values, e.g. 1,2,3,4,5,6")
    sweep.add_argument("--model", default="rclrec")
    _common(sweep)
    _training(sweep, test=False)

    study = sub.add_parser("study", help="the whole paper on one log: grids, tuned models × seeds, ablations, sweep, REPORT.md")
    study.add_argument("--models", type=_models, default=None,
                       help="train only these Table 1 models' part of the study (a piece of a long study; "
                       "rclrec brings its ablations and sweep); the report covers the whole study")  # fmt: skip
    _common(study)
    _training(study, tuned=False)
    study.add_argument("--report-only", action="store_true",
                       help="write REPORT.md, the tables and figures from the finished runs; train nothing")

    diagnose = sub.add_parser("diagnose", help="variants that tell budget, selection, QAL and semantic IDs apart")
    diagnose.add_argument("model", nargs="?", default="rclrec")
    _common(diagnose)
    _training(diagnose, seeds=False, tuned=True, test=False)
    diagnose.add_argument("--questions", type=_models, default=None, metavar="Q,Q",
                          help="compute only these questions (e.g. semantic-IDs,budget); diagnosis.md still lists "
                          "every question, the rows not computed yet as 'not run yet'")  # fmt: skip

    report = sub.add_parser("report", help="write Table 1 (Markdown, LaTeX, stats) from existing results")
    _common(report)
    _test(report)

    models = sub.add_parser("models", help="the registered models: name, display name, table, class, grid")
    models.add_argument("--config-dir", action="append", default=[], metavar="DIR")
    models.add_argument("--table", default=None, help="only the models of this table (table1, table2)")
    models.add_argument("--names", action="store_true", help="print the names only, comma-separated")

    data = sub.add_parser("data", help="inspect a dataset")
    data_sub = data.add_subparsers(dest="data_command", required=True, parser_class=_Parser)
    stats = data_sub.add_parser("stats", help="users, items, rows per behavior, targets, repeat share")
    _common(stats)
    stats.add_argument("--json", action="store_true", help="print JSON instead of a table")
    stats.add_argument("--semantic-ids", action="store_true",
                       help="also the split's semantic IDs (fitted, or read from the cache): their collisions, and "
                            "the share of items in a shared prefix by how many training events the item has")  # fmt: skip
    bench_cmd = sub.add_parser("benchmark", help="speed benchmarks that print ratios")
    bench_sub = bench_cmd.add_subparsers(dest="benchmark", required=True, parser_class=_Parser)
    bench_train = bench_sub.add_parser("train", help="seconds per batch and epoch, GFLOP/s against the matmul peak, "
                                       "and RecBole models against RecBole's own trainer")  # fmt: skip
    bench_train.add_argument("--models", type=_models, default=None, help="comma-separated (default: every Table 1 model)")
    _common(bench_train)
    bench_train.add_argument("--batches", type=int, default=20)
    bench_train.add_argument("--threads", default="1", help="comma-separated thread counts, e.g. 1,2")
    _set(bench_train)  # what one field costs: run it with and without, e.g. --set tiger.dropout=0
    bench_workers = bench_sub.add_parser("workers", help="run --all with --workers 1, then --workers N: wall-time "
                                         "ratio and whether the rank files are byte-identical")  # fmt: skip
    _common(bench_workers)
    bench_workers.add_argument("--models", type=_models, default=None, help="comma-separated (default: every Table 1 model)")
    bench_workers.add_argument("--workers", type=int, default=2)
    bench_workers.add_argument("--seeds", type=int, default=3)
    bench_workers.set_defaults(profile="smoke")
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
        code = _dispatch(args)
        sys.stdout.flush()  # a reader that went away shows here, in the handlers below, not at interpreter exit
        return code
    except BrokenPipeError:  # stdout's reader closed it (`| head`): the command stops there, as under SIGPIPE
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing left to flush at exit
        return 141
    except BenchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # the environment: a results dir that is a file, no permission, a full disk
        where = f"{err.filename}: " if err.filename else ""
        print(f"error: {where}{err.strerror or err} (check the path, its permissions and free disk space)", file=sys.stderr)
        return 2
    except MemoryError as err:  # a step without its own name for it (bench.memory names the split's steps)
        from bench.memory import out_of_memory

        print(f"error: {out_of_memory(f'running bench {args.command}', err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished runs are kept; rerun the same command to resume", file=sys.stderr)
        return 130


def _request(args: argparse.Namespace) -> Request:
    from bench.plan import Request

    return Request(
        dataset=args.dataset, data=args.data, name=args.name, profile=args.profile, results_dir=args.results_dir,
        seeds=getattr(args, "seeds", None), sets=tuple(getattr(args, "sets", ())), tuned=getattr(args, "tuned", False),
        test=getattr(args, "test", "wilcoxon"), config_dirs=tuple(args.config_dir),
    )  # fmt: skip


def _dispatch(args: argparse.Namespace) -> int:
    import torch

    from bench import plan as plans
    from bench import report, runner

    device = _device(getattr(args, "device", None))
    if args.command in ("run", "tune", "ablate", "sweep", "diagnose"):
        plan = _plan(args)
        if args.dry_run:
            return _dry_run(plan, args)
        return _after(args, plan, runner.run(plan, device, **_executor(args)))
    if args.command == "study":
        from bench import study

        req = _request(args)
        if args.dry_run:
            print(study.dry_run(req, _executor(args)["workers"], args.models))
            return 0
        if args.report_only:
            failed, path = [], study.write(plans.dataset_folder(req), req)
        else:
            failed, path = study.run(req, device, _executor(args), models=args.models)
        print(f"wrote {path}\n")
        print(study.summary(path.parent))  # the report's numbers and verdicts, last on the terminal
        return _failures(failed)
    if args.command == "report":
        _print_paths(report.table1(plans.dataset_folder(_request(args)), args.test))
        return 0
    if args.command == "models":
        return _list_models(args)
    if args.command == "data" and args.data_command == "stats":
        from bench.config import Configs

        ds = Configs(args.config_dir).dataset(args.dataset, args.profile, args.data, args.name)
        quiet = (lambda message: None) if args.json else runner.say
        split = runner.prepare_split(ds, runner.cache_dir(args.results_dir), quiet)[0]
        st = split.stats()
        if args.semantic_ids:
            st.update(_semantic_id_stats(split, ds, args.results_dir))
        if args.json:
            print(json.dumps(st, indent=2))
        else:
            from tabulate import tabulate

            rows = [(k, f"{v:.4f}" if isinstance(v, float) else (", ".join(v) if isinstance(v, list) else v)) for k, v in st.items()]
            print(tabulate(rows, headers=[ds.name, "value"], tablefmt="simple", disable_numparse=True))
        return 0
    if args.command == "benchmark" and args.benchmark == "train":
        from bench import train_benchmark
        from bench.io import write_json

        plan = plans.run_plan(dataclasses.replace(_request(args), seeds=1), args.models)
        split = runner.prepare_split(plan.dataset, runner.cache_dir(args.results_dir))[0]
        threads = [int(t) for t in args.threads.split(",")]
        rows = train_benchmark.measure(plan, split, args.batches, threads)
        print(train_benchmark.table(rows))
        path = plan.folder / "benchmarks" / "train.json"
        write_json(path, {"dataset": plan.dataset.name, "profile": plan.profile.name, "batches": args.batches, "sets": args.sets,
                          "rows": rows})  # fmt: skip
        print(f"wrote {path}")
        return 0
    if args.command == "benchmark" and args.benchmark == "workers":
        from bench import benchmarks

        if args.workers < 2:
            raise BenchError("benchmark workers: --workers must be at least 2 (it is compared with 1)")
        out = benchmarks.workers(_request(args), args.models, args.workers, device or runner.default_device())
        w = args.workers
        print(f"run {','.join(args.models) if args.models else '--all'}, {out['jobs']} jobs, profile {args.profile}: --workers 1 {out['seconds_1']:.1f} s, "
              f"--workers {w} {out[f'seconds_{w}']:.1f} s, ratio {out['ratio']:.2f}; "
              f"{out['rank_files']} rank files {'byte-identical' if out['identical'] else 'DIFFER'}")
        if out["failed"]:
            print(f"failed: {', '.join(out['failed'])}")
        return 0 if out["identical"] and not out["failed"] else 1
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


def _executor(args: argparse.Namespace) -> dict:
    from bench.executor import default_workers

    workers = default_workers() if args.workers is None else args.workers
    if workers < 1:
        raise BenchError("--workers must be at least 1")
    return {"wait": not args.no_wait, "workers": workers, "scheduler": args.scheduler}


def _plan(args: argparse.Namespace) -> Plan:
    """The plan of a command that trains."""
    from bench import plan as plans

    req = _request(args)
    models = None if getattr(args, "all", False) else getattr(args, "models", None)
    if args.command == "run":
        return plans.run_plan(req, models)
    if args.command == "tune":
        return plans.tune_plan(req, models)
    if args.command == "ablate":
        return plans.ablate_plan(req, args.model)
    if args.command == "sweep":
        return plans.sweep_plan(req, args.model, args.param, args.values)
    plan = plans.diagnose_plan(req, args.model)
    return plan if args.questions is None else plans.only_questions(plan, args.questions)


def _after(args: argparse.Namespace, plan: Plan, failed: list[str]) -> int:
    """What a command writes once its jobs ran: its table, selection, figure or diagnosis."""
    from bench import diagnosis, figure, report, tuning
    from bench import plan as plans

    if args.command == "run":
        if args.no_report:
            return _failures(failed)
        return _finish(failed, lambda: report.table1(plan.folder, plan.test))
    if args.command == "tune":
        tuning.select(plan)
        print(f"wrote {plan.folder / 'tuning.md'}")
        return _failures(failed)
    if args.command == "ablate":
        return _finish(failed, lambda: report.table2(plan.folder, args.model, plan.test))
    if args.command == "sweep":
        values = list(dict.fromkeys(j.sweep["value"] for j in plan.jobs))
        return _finish(failed, lambda: figure.figure3(plan.folder, args.model, args.param, values))
    _print_paths(diagnosis.write(plans.diagnose_plan(_request(args), args.model)))  # every question's row
    for display, reason in plan.waiting:  # rows the table lists as waiting: not failures, so not in the exit code
        print(f"not run: {display} (waiting for {reason})")
    return _failures(failed)


def _dry_run(plan: Plan, args: argparse.Namespace) -> int:
    from bench import runner

    print(runner.dry_run(plan, _executor(args)["workers"]))
    return 0


def _semantic_id_stats(split: Split, ds: DatasetConfig, results_dir: str) -> dict[str, object]:
    """``data stats --semantic-ids``: the split's semantic IDs as every generative run reads them (the
    cache of ``results_dir``, else a fit), their collisions, and where those fall by item training events."""
    import numpy as np

    from bench import runner
    from bench.semantic_ids import collisions_and_features, collisions_by_training_events, load_or_fit

    ids = load_or_fit(split, ds.semantic_ids, runner.cache_dir(results_dir))
    out: dict[str, object] = {f"semantic_ids_{k}": ids.stats[k] for k in
                              ("fingerprint", "distinct_prefixes", "largest_collision_group", "collision_rate")}  # fmt: skip
    events = np.bincount(split.items[split.train_mask()], minlength=split.n_items)
    for bucket, items, share in collisions_by_training_events(ids.codes, events):
        out[f"semantic_ids_items_with_{bucket}_training_events"] = items
        out[f"semantic_ids_collision_rate_{bucket}_training_events"] = share
    features = [split.item_features[f] for f in ds.semantic_ids.features if f in split.item_features]
    if features:  # the side features the fit used (those of its config that the log has)
        value_sets, items, groups = collisions_and_features(ids.codes, features)
        out["semantic_ids_distinct_feature_value_sets"] = value_sets
        out["semantic_ids_items_sharing_all_feature_values"] = items
        out["semantic_ids_collision_groups_within_one_feature_value_set"] = groups
    return out


def _list_models(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from bench.config import Configs

    entries = Configs(args.config_dir).models(args.table)
    if args.names:
        print(",".join(e.name for e in entries))
        return 0
    rows = [[e.name, e.display, e.table or "–", e.extends or "–", e.target, e.tune_owner or "–"] for e in entries]
    print(tabulate(rows, headers=["name", "display", "table", "extends", "class", "tuned by"], tablefmt="simple"))
    return 0


def _device(name: str | None) -> torch.device | None:
    import torch

    if name is None:
        return None
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BenchError(f"--device {name}: CUDA is not available on this machine")
    return device


def _finish(failed: list[str], write: Callable[[], dict[str, Path]]) -> int:
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


def _print_paths(paths: dict[str, Path]) -> None:
    for path in paths.values():
        print(f"wrote {path}")
    if "stats" in paths:  # a table: end with its numbers
        from bench.report import summary

        print()
        print(summary(paths["stats"]))
