"""Each command resolves once into a :class:`Plan`: the profile, the dataset, and every job with its model
class, typed config, seed, display name and table. Everything that can be wrong with a command (an
unknown model, field or value, a missing tuning selection) fails here, before anything trains; the runner
only executes jobs and the report only reads what the result files say about themselves.

A job's parameters, later wins: the model's YAML chain (``extends``) at the profile → its tuned selection
(``--tuned``) → a grid point (``tune``) or sweep value (``sweep``) → ``--set model.field=value``.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import stats
from bench.config import Configs, DatasetConfig, ModelEntry, Profile, check_ranges, from_dict, override, parse_sets
from bench.errors import BenchError
from bench.recommender import resolve


@dataclass(frozen=True)
class Job:
    """One (model configuration, seed) to train and evaluate."""

    name: str
    """The result folder, relative to the dataset's: ``sasrec``, ``tuning/sasrec/learning_rate=0.003,…``,
    ``sweep/rclrec/k=4``."""
    model: str
    """The registered model it comes from."""
    target: str
    config: Any
    """The model's frozen config dataclass, fully resolved."""
    seed: int
    display: str
    table: str | None
    order: int
    extends: str | None
    overrides: Mapping[str, Any] = field(default_factory=dict)
    """What the job changes on top of the YAMLs (tuned selection, grid point, sweep value, ``--set``)."""
    sweep: Mapping[str, Any] | None = None
    """``{"model", "param", "value"}`` for a sweep point."""
    reuse: str | None = None
    """A result folder that may already hold this exact run (the tuning trial of a tuned model's seed 0,
    the base model's run for a sweep point at its default): copied instead of trained when its split and
    config hash match."""

    @property
    def label(self) -> str:
        return f"{self.name} seed{self.seed}"

    def identity(self) -> dict[str, Any]:
        """What a result file says about the job, so tables never need the configs to read it."""
        return {
            "model": self.name, "base_model": self.model, "display": self.display, "table": self.table,
            "order": self.order, "extends": self.extends, "overrides": dict(self.overrides), "sweep": self.sweep,
        }  # fmt: skip


@dataclass(frozen=True)
class Plan:
    command: str
    profile: Profile
    dataset: DatasetConfig
    results_dir: Path
    jobs: tuple[Job, ...]
    test: str = stats.DEFAULT
    waiting: tuple[tuple[str, str], ...] = ()
    """(display, what it waits for) of the jobs that cannot be planned yet: ``diagnose --tuned``'s TIGER rows
    before TIGER's grid has run. The command runs the rest; its table and ``--dry-run`` list these as waiting."""

    @property
    def folder(self) -> Path:
        """Where this dataset's results live: ``<results-dir>/<dataset name>/``."""
        return self.results_dir / self.dataset.name

    def json_path(self, job: Job) -> Path:
        return self.folder / job.name / f"seed{job.seed}.json"

    def reuse_path(self, job: Job) -> Path | None:
        """The result file of the run ``job`` may reuse (:attr:`Job.reuse`), or None when it reuses none."""
        return self.folder / job.reuse / f"seed{job.seed}.json" if job.reuse is not None else None


@dataclass(frozen=True)
class Request:
    """The options every planning command shares (the CLI's flags, or a caller's arguments)."""

    dataset: str = "synthetic"
    data: str | None = None
    name: str | None = None
    profile: str = "cpu"
    results_dir: Path = Path("results")
    seeds: int | None = None
    sets: tuple[str, ...] = ()
    tuned: bool = False
    test: str = stats.DEFAULT
    config_dirs: tuple[str, ...] = ()


class _Context:
    """The parts of a request resolved once: configs, profile, dataset, seeds, ``--set`` values."""

    def __init__(self, req: Request) -> None:
        self.req = req
        self.configs = Configs(req.config_dirs)
        self.profile, _ = self.configs.profile(req.profile)
        self.dataset = self.configs.dataset(req.dataset, req.profile, req.data, req.name)
        self.seeds = req.seeds if req.seeds is not None else self.profile.seeds
        if self.seeds < 1:
            raise BenchError("--seeds must be at least 1")
        stats.get(req.test)  # an unknown test name fails before training
        self.sets = parse_sets(req.sets)
        self.used_sets: set[str] = set()
        self.folder = req.results_dir / self.dataset.name

    def plan(self, command: str, jobs: list[Job], waiting: Sequence[tuple[str, str]] = ()) -> Plan:
        unused = sorted(set(self.sets) - self.used_sets)
        if unused:
            names = sorted({j.model for j in jobs})
            raise BenchError(f"--set {unused[0]}.…: '{unused[0]}' is not a model of this command ({', '.join(names)})")
        return Plan(command, self.profile, self.dataset, self.req.results_dir, tuple(jobs), self.req.test, tuple(waiting))

    def chain(self, entry: ModelEntry) -> list[str]:
        """The model and its ancestors, nearest first."""
        out = [entry.name]
        while entry.extends is not None:
            entry = self.configs.model(entry.extends)
            out.append(entry.name)
        return out

    def config(self, entry: ModelEntry, *steps: tuple[Mapping[str, Any], str]) -> tuple[Any, dict[str, Any]]:
        """The typed config of ``entry`` at the profile with ``steps`` ((values, where) pairs) applied in order,
        then ``--set`` values for the model or any ancestor; and everything applied on top of the YAMLs."""
        cls = resolve(entry.target)
        config = from_dict(cls.Config, entry.params(self.profile.name), entry.source)
        applied: dict[str, Any] = {}
        for values, where in steps:
            config = override(config, values, where)
            applied.update(values)
        for name in reversed(self.chain(entry)):  # the model's own --set wins over its parent's
            if name in self.sets:
                self.used_sets.add(name)
                config = override(config, self.sets[name], f"--set {name}")
                applied.update(self.sets[name])
        check_ranges(config, f"{entry.name}{f' (with {applied})' if applied else ''}")
        return config, applied

    def selection(self, entry: ModelEntry) -> tuple[dict[str, Any], str] | None:
        """The tuned selection ``entry`` uses (its own or its grid's owner's) and the trial that made it; None
        for a model without a grid."""
        if entry.tune_owner is None:
            return None
        path = selection_path(self.folder, entry.tune_owner)
        if not path.exists():
            whose = "has a tuning grid" if entry.tune_owner == entry.name else f"uses the tuning grid of {entry.tune_owner}"
            raise BenchError(
                f"{entry.name} {whose} but {path} does not exist: run 'python -m bench tune --models {entry.tune_owner}' first"
            )
        record = json.loads(path.read_text())
        if record["profile"] != self.profile.name:
            raise BenchError(f"{path}: tuned at profile '{record['profile']}', not '{self.profile.name}'")
        return dict(record["selected"]), str(record["selected_trial"])

    def jobs(self, entry: ModelEntry, seeds: Sequence[int], *, name: str | None = None, display: str | None = None,
             table: str | None | bool = True, point: tuple[Mapping[str, Any], str] | None = None,
             sweep: Mapping[str, Any] | None = None, reuse: str | None = None) -> list[Job]:  # fmt: skip
        steps = []
        if self.req.tuned and (chosen := self.selection(entry)) is not None:
            steps.append((chosen[0], f"{selection_path(self.folder, entry.tune_owner)} (selected)"))
            if entry.tune_owner == entry.name and name is None:
                reuse = chosen[1]  # the selected trial is this model's seed-0 run
        if point is not None:
            steps.append(point)
        config, applied = self.config(entry, *steps)
        return [
            Job(
                name=name or entry.name, model=entry.name, target=entry.target, config=config, seed=seed,
                display=display or entry.display, table=entry.table if table is True else (table or None),
                order=entry.order, extends=entry.extends, overrides=applied, sweep=sweep,
                reuse=reuse if seed == 0 or sweep is not None else None,
            )  # fmt: skip
            for seed in seeds
        ]


# ------------------------------------------------------------------------------------ commands


def run_plan(req: Request, models: Sequence[str] | None) -> Plan:
    """``bench run``: the named models, or (None) every Table 1 model, each with every seed."""
    ctx = _Context(req)
    entries = ctx.configs.models("table1") if models is None else [ctx.configs.model(m) for m in models]
    return ctx.plan("run", [j for e in entries for j in ctx.jobs(e, range(ctx.seeds))])


def ablate_plan(req: Request, model: str = "rclrec") -> Plan:
    """``bench ablate``: ``model`` and every Table 2 variant that extends it."""
    ctx = _Context(req)
    parent = ctx.configs.model(model)
    variants = [e for e in ctx.configs.models("table2") if e.extends == model]
    if not variants:
        raise BenchError(f"no model extends '{model}' with 'table: table2' (the ablation variants)")
    return ctx.plan("ablate", [j for e in (parent, *variants) for j in ctx.jobs(e, range(ctx.seeds))])


def grid_points(entry: ModelEntry) -> list[dict[str, Any]]:
    """The model's grid as parameter overrides, in YAML order (the first point wins ties)."""
    if not entry.tune:
        return []
    points = []
    for values in itertools.product(*entry.tune.values()):
        point: dict[str, Any] = {}
        for key, value in zip(entry.tune, values):
            point.update({name.strip(): value for name in key.split(",")})
        points.append(point)
    return points


def trial_name(model: str, point: Mapping[str, Any]) -> str:
    """Where a grid point's run lives, relative to the dataset's results: tuning/<model>/<p=v,…>."""
    return f"tuning/{model}/" + ",".join(f"{k}={v}" for k, v in point.items())


def selection_path(folder: Path, model: str) -> Path:
    return folder / "tuning" / f"{model}.json"


def tune_plan(req: Request, models: Sequence[str] | None) -> Plan:
    """``bench tune``: every point of each model's own grid, seed 0 (models without a grid are skipped;
    a variant that inherits its parent's grid is tuned through the parent)."""
    ctx = _Context(dataclasses.replace(req, tuned=False))
    entries = ctx.configs.models("table1") if models is None else [ctx.configs.model(m) for m in models]
    jobs = []
    for entry in entries:
        if entry.tune_owner not in (None, entry.name):
            raise BenchError(f"{entry.name} uses the tuning grid and selection of {entry.tune_owner}: tune that one")
        for point in grid_points(entry):
            label = ", ".join(f"{k}={v}" for k, v in point.items())
            jobs += ctx.jobs(entry, [0], name=trial_name(entry.name, point), display=f"{entry.display} [{label}]",
                             table=False, point=(point, f"{entry.source}: tune"))  # fmt: skip
    if not jobs:
        raise BenchError(f"none of {', '.join(e.name for e in entries)} has a 'tune' grid in its YAML")
    return ctx.plan("tune", jobs)


def sweep_plan(req: Request, model: str, param: str, values: str) -> Plan:
    """``bench sweep``: one run per value of a numeric config field, in ``sweep/<model>/<param>=<value>/``.
    The point equal to the model's own configuration reuses the model's run when it exists."""
    ctx = _Context(req)
    entry = ctx.configs.model(model)
    cls = resolve(entry.target).Config
    hints = typing.get_type_hints(cls)
    if param not in hints or hints[param] not in (int, float):
        numeric = [f.name for f in dataclasses.fields(cls) if hints[f.name] in (int, float)]
        raise BenchError(f"--param {param}: not a numeric parameter of {model} (numeric: {', '.join(numeric)})")
    try:
        parsed = [hints[param](v.strip()) for v in values.split(",") if v.strip()]
    except ValueError:
        raise BenchError(f"--values {values}: expected comma-separated {hints[param].__name__} values") from None
    if not parsed:
        raise BenchError("--values: expected at least one value")
    base = ctx.jobs(entry, [0])[0].config
    jobs = []
    for value in parsed:
        point = {param: value}
        same = base == override(base, point, "--values")
        jobs += ctx.jobs(entry, range(ctx.seeds), name=f"sweep/{model}/{param}={value}",
                         display=f"{entry.display} ({param} = {value})", table=False,
                         point=(point, f"--values {value}"), sweep={"model": model, "param": param, "value": value, "display": entry.display},
                         reuse=entry.name if same else None)  # fmt: skip
    return ctx.plan("sweep", jobs)


def dataset_folder(req: Request) -> Path:
    """``<results-dir>/<dataset name>`` for commands that only read results (``report``)."""
    return req.results_dir / Configs(req.config_dirs).dataset(req.dataset, req.profile, req.data, req.name).name


REFERENCE = "reference"
"""The diagnosis's question that every other row's Δ is measured against (the model as configured)."""

DIAGNOSTIC_VARIANT = "rclrec-diagnostic"
"""The model entry of RCLRec's subclass with the diagnostic behaviors (rclrec/diagnostics.py)."""
DIAGNOSTIC_QUESTIONS = (
    ("fine-tuning", "none: θ0 as pre-trained, decoding from e_pay alone (stage 2 skipped)", {"fine_tune": False}),
    ("QAL", "on the selection module only (the backbone learns from L_SFT alone)", {"qal_scope": "selection"}),
    ("inference reading", "the decoder generates its own k-item prefix, then the target, at test time",
     {"generated_prefix": True}),
    *[("fine-tuning", f"stage 2 at {scale:g}× the learning rate", {"sft_lr_scale": scale}) for scale in (0.1, 0.01)],
)  # fmt: skip
DIAGNOSTIC_BACKBONE = ("backbone", "one encoder token per code and tied output heads, as TIGER and MBGen have",
                       {"backbone": "token"})  # fmt: skip
"""The diagnostic variant with another network (and so its own θ0)."""


def diagnose_plan(req: Request, model: str = "rclrec") -> Plan:
    """``bench diagnose``: variants of ``model`` (seed 0) that each answer one question about why it ranks
    where it does — budget, selection, the quality-aware loss, semantic IDs — never mixed into Table 1/2.
    The ``question`` and ``variant`` of each job are in its ``overrides`` and its display name."""
    ctx = _Context(dataclasses.replace(req, seeds=1))
    entry = ctx.configs.model(model)
    base = ctx.jobs(entry, [0])[0].config
    triple = {f: 3 * getattr(base, f) for f in ("pretrain_epochs", "pretrain_patience", "epochs", "patience") if hasattr(base, f)}
    # The questions that reuse the reference's θ0 (only a fine-tuning or a test pass each) come first, so a
    # one-worker run answers them within minutes; the budget, the backbone and the random codes each train
    # a new θ0.
    questions: list[tuple[str, str, str, dict[str, Any]]] = [
        (REFERENCE, "as configured", model, {}),
        ("selection", "the last-k prefix fed to the fine-tuned model at test time", model, {"inference_prefix": "recent"}),
        ("selection", "an oracle prefix (the target in the last slot; leaks by design) at test time", model,
         {"inference_prefix": "oracle"}),
        *[("QAL", f"λ = {lam:g}", model, {"lam": lam}) for lam in (0.0, 0.1, 1.0, 10.0)],
        *[(question, variant, DIAGNOSTIC_VARIANT, values) for question, variant, values in DIAGNOSTIC_QUESTIONS
          if model == "rclrec"],
        ("budget", "3× the epochs and patience of every stage", model, triple),
        *[(question, variant, DIAGNOSTIC_VARIANT, values) for question, variant, values in [DIAGNOSTIC_BACKBONE]
          if model == "rclrec"],
        ("semantic IDs", f"{entry.display} on random collision-free codes", model, {"random_ids": True}),
        ("semantic IDs", "TIGER on the fitted codes", "tiger", {}),
        ("semantic IDs", "TIGER on random collision-free codes", "tiger", {"random_ids": True}),
    ]  # fmt: skip
    jobs, waiting = [], []
    for i, (question, variant, name, values) in enumerate(questions):
        e = ctx.configs.model(name)
        display = f"{question}: {variant}"
        if req.tuned and name != model and e.tune_owner and not selection_path(ctx.folder, e.tune_owner).exists():
            # Another model's untuned run would not be the comparison the row promises; the diagnosed
            # model's own rows need nothing from it, so they run now and this one waits for that grid.
            waiting.append((display, f"{e.tune_owner}'s tuning: run 'python -m bench tune --models {e.tune_owner}'"))
            continue
        # A variant that changes nothing for its model (λ = RCLRec's configured λ, TIGER on its own codes) is
        # that model's seed-0 run, reused when one with the same split and config is there.
        own = base if name == model else ctx.jobs(e, [0])[0].config
        same = all(getattr(own, k, object()) == v for k, v in values.items())
        jobs += ctx.jobs(e, [0], name=f"diagnosis/{i:02d}-{question.replace(' ', '-')}", display=display,
                         table=False, point=(values, f"diagnose {question}"), reuse=e.name if same else None)  # fmt: skip
    return ctx.plan("diagnose", jobs, waiting)


def _question_key(question: str) -> str:
    return question.lower().replace(" ", "-")


def only_questions(plan: Plan, questions: Sequence[str]) -> Plan:
    """``diagnose --questions``: the diagnose plan's jobs (and waiting rows) of these questions only, so the
    questions can be computed apart (on two machines, or the ones that share θ0 first); the rows keep
    their names. A name is matched without case, a dash standing for a space (``semantic-IDs``). The
    reference is always kept: every row's Δ is measured against it, and it costs nothing where Table 1's
    seed-0 run is there to reuse."""
    def question(display: str) -> str:
        return _question_key(display.split(": ", 1)[0])

    known = list(dict.fromkeys([*(question(j.display) for j in plan.jobs), *(question(d) for d, _ in plan.waiting)]))
    wanted = {_question_key(q) for q in questions}
    unknown = sorted(wanted - set(known))
    if unknown:
        raise BenchError(f"--questions {unknown[0]}: not a question of this diagnosis ({', '.join(known)})")
    wanted.add(REFERENCE)
    return dataclasses.replace(plan, jobs=tuple(j for j in plan.jobs if question(j.display) in wanted),
                               waiting=tuple(w for w in plan.waiting if question(w[0]) in wanted))  # fmt: skip
