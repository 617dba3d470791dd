"""Configuration: YAML files merged into frozen dataclasses, found on a search path.

The path is ``--config-dir`` folders, then ``BENCH_CONFIG_PATH``, then the built-in ``configs/``; each
holds ``datasets/``, ``models/`` and ``profiles/``, and the first file of a name wins. Merge order, later
wins: ``datasets/<name>.yaml`` → the profile's ``datasets.<name>`` section; for a model, along its
``extends`` chain from the root, each YAML's ``defaults`` → its ``profiles.<profile>`` section; then the
tuned selection, a sweep or grid point, and ``--set`` (see :mod:`bench.plan`). Unknown keys are errors
that name the file and the field, so a typo never silently does nothing.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

from bench.data.loaders import DataChecks
from bench.data.preprocess import PreprocessConfig
from bench.data.split import SplitConfig
from bench.data.synthetic import SyntheticConfig
from bench.errors import BenchError
from bench.semantic_ids import SemanticIdConfig

T = TypeVar("T")


def read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise BenchError(f"{path}: no such config file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        raise BenchError(f"{path}: {where}invalid YAML ({getattr(err, 'problem', err)})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise BenchError(f"{path}: expected a mapping at the top level")
    return data


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Recursive dict merge; ``override`` wins, nested mappings are merged key by key."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def from_dict(cls: type[T], data: Mapping[str, Any], source: str) -> T:
    """Build frozen dataclass ``cls`` from ``data``; unknown fields and wrong types name ``source``."""
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise BenchError(f"{source}: unknown field '{unknown[0]}' (known: {', '.join(fields)})")
    hints = typing.get_type_hints(cls)
    kwargs = {name: _coerce(value, hints[name], f"{source}: field '{name}'") for name, value in data.items()}
    return cls(**kwargs)


def _coerce(value: Any, hint: Any, where: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except BenchError:
                continue
        raise BenchError(f"{where} has value {value!r} of the wrong type ({hint})")
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, Mapping):
            raise BenchError(f"{where} must be a mapping")
        return from_dict(hint, value, where)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise BenchError(f"{where} must be a list")
        return tuple(_coerce(v, args[0], where) for v in value)
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise BenchError(f"{where} must be true or false, not {value!r}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise BenchError(f"{where} must be a whole number, not {value!r}")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise BenchError(f"{where} must be a number, not {value!r}")
    if hint is str:
        if isinstance(value, str):
            return value
        raise BenchError(f"{where} must be a string, not {value!r}")
    return value


# ------------------------------------------------------------------------------- the three kinds


@dataclass(frozen=True)
class DatasetConfig:
    name: str
    """The log's name: its results folder (``<results-dir>/<name>/``) and the name in every caption. A ``csv``
    log read from ``--data FOLDER`` takes the folder's name; ``--name`` overrides."""
    config: str
    """The dataset YAML it was built from (``csv``, ``tmall``, …)."""
    format: str
    data: str | None = None
    checks: DataChecks = DataChecks()
    """Plausibility rules while reading: the timestamp window and what to do outside it, side-file coverage."""
    preprocess: PreprocessConfig = PreprocessConfig()
    split: SplitConfig = SplitConfig()
    synthetic: SyntheticConfig | None = None
    semantic_ids: SemanticIdConfig = SemanticIdConfig()
    """One codebook per split, shared by every generative model (SPEC §2)."""


@dataclass(frozen=True)
class Profile:
    name: str
    seeds: int = 1
    """How many seeds (0, 1, …) each model runs with unless --seeds says otherwise."""
    threads: int = 1
    """torch CPU threads. One thread makes CPU results bit-identical run to run."""
    eval_batch_size: int = 256


TABLES = ("table1", "table2")
"""Where a model's rows go: Table 1 (methods) or Table 2 (ablations of the model it extends)."""
MODEL_KEYS = ("class", "extends", "display", "table", "order", "defaults", "profiles", "tune")


@dataclass(frozen=True)
class ModelEntry:
    """One model YAML with its ``extends`` chain resolved: who the model is and its untyped parameters.

    A variant (``extends: parent``) inherits the parent's class, parameters (its own ``defaults`` and
    ``profiles`` apply on top of the parent's, profile by profile), tuning grid and tuned selection; its
    identity (``display``, ``table``, ``order``) is its own.
    """

    name: str
    target: str
    """``module:Class``, or ``/abs/path/file.py:Class`` for a file given relative to its YAML."""
    display: str
    table: str | None
    order: int
    extends: str | None
    tune: Mapping[str, list[Any]]
    tune_owner: str | None
    """The model whose ``bench tune`` selection this one uses (itself, or the ancestor that defines the grid)."""
    source: str
    layers: tuple[tuple[Mapping[str, Any], Mapping[str, Mapping[str, Any]]], ...]
    """(defaults, profiles) of each YAML of the chain, root first."""

    def params(self, profile: str) -> dict[str, Any]:
        """The merged parameters at ``profile``: for each YAML of the chain, root first, its defaults and
        then its section for the profile."""
        out: dict[str, Any] = {}
        for defaults, profiles in self.layers:
            out = merge(merge(out, defaults), profiles.get(profile) or {})
        return out


class Configs:
    """The config search path: ``--config-dir`` folders (in the order given), then ``BENCH_CONFIG_PATH``
    (``os.pathsep``-separated), then the built-in ``configs/``. A file found earlier wins, so a user's folder
    adds models, datasets and profiles or overrides built-in ones without touching the checkout."""

    BUILTIN = Path(__file__).resolve().parent.parent / "configs"

    def __init__(self, extra: typing.Sequence[str | Path] = ()) -> None:
        env = [p for p in os.environ.get("BENCH_CONFIG_PATH", "").split(os.pathsep) if p]
        dirs = [Path(p).expanduser().resolve() for p in (*extra, *env)]
        for d in dirs:
            if not d.is_dir():
                raise BenchError(f"{d}: config folder does not exist (from --config-dir or BENCH_CONFIG_PATH)")
        self.dirs: tuple[Path, ...] = (*dirs, self.BUILTIN)

    def find(self, kind: str, name: str, after: int = -1) -> tuple[int, Path] | None:
        """(index of its folder, path) of the first ``<dir>/<kind>/<name>.yaml`` in a folder after ``after``."""
        for i, d in enumerate(self.dirs):
            path = d / kind / f"{name}.yaml"
            if i > after and path.is_file():
                return i, path
        return None

    def names(self, kind: str) -> list[str]:
        return sorted({p.stem for d in self.dirs for p in (d / kind).glob("*.yaml")})

    def _path(self, kind: str, name: str, noun: str) -> Path:
        found = self.find(kind, name)
        if found is None:
            raise BenchError(f"unknown {noun} '{name}' (known: {', '.join(self.names(kind))})")
        return found[1]

    # --------------------------------------------------------------------------- profiles, datasets

    def profile(self, name: str) -> tuple[Profile, dict[str, Any]]:
        """The profile and its per-dataset overrides (its ``datasets:`` section)."""
        path = self._path("profiles", name, "profile")
        data = read_yaml(path)
        datasets = data.pop("datasets", {}) or {}
        return from_dict(Profile, {"name": name, **data}, str(path)), datasets

    def dataset(
        self, name: str, profile: str, data_path: str | None = None, display_name: str | None = None
    ) -> DatasetConfig:
        """The dataset YAML merged with the profile's section for it; ``data_path`` and ``display_name``
        (``--data``, ``--name``) on top."""
        path = self._path("datasets", name, "dataset")
        _, overrides = self.profile(profile)
        data = merge(read_yaml(path), overrides.get(name, {}) or {})
        if data_path is not None:
            data["data"] = str(Path(data_path).expanduser())
        data.setdefault("name", display_name or dataset_name(name, data.get("format"), data_path))
        if display_name is not None:
            data["name"] = display_name
        check_name(str(data["name"]), "the dataset name")
        return from_dict(DatasetConfig, {"config": name, **data}, str(path))

    # --------------------------------------------------------------------------- models

    def model_names(self) -> list[str]:
        return self.names("models")

    def models(self, table: str | None = None) -> list[ModelEntry]:
        """Every registered model (or those of one table), in table order."""
        entries = [self.model(n) for n in self.model_names()]
        return sorted((e for e in entries if table is None or e.table == table), key=lambda e: (e.order, e.name))

    def model(self, name: str) -> ModelEntry:
        return self._model(name, -1, ())

    def _model(self, name: str, after: int, chain: tuple[str, ...]) -> ModelEntry:
        found = self.find("models", name, after)
        if found is None:
            raise BenchError(f"unknown model '{name}' (known: {', '.join(self.model_names())})")
        index, path = found
        data = read_yaml(path)
        unknown = sorted(set(data) - set(MODEL_KEYS))
        if unknown:
            raise BenchError(f"{path}: unknown top-level key '{unknown[0]}' (known: {', '.join(MODEL_KEYS)})")
        table = data.get("table", "none" if "extends" in data else "table1")
        if table not in (*TABLES, "none", None):
            raise BenchError(f"{path}: 'table' must be one of {', '.join(TABLES)}, none (not {table!r})")
        display = data.get("display", name)
        order = data.get("order", 1000)
        if not isinstance(display, str) or not display.strip():
            raise BenchError(f"{path}: 'display' must be a non-empty string")
        if not isinstance(order, int) or isinstance(order, bool):
            raise BenchError(f"{path}: 'order' must be a whole number")
        defaults, profiles = data.get("defaults") or {}, data.get("profiles") or {}
        if not isinstance(defaults, Mapping) or not isinstance(profiles, Mapping):
            raise BenchError(f"{path}: 'defaults' and 'profiles' must be mappings")
        grid = _grid(data.get("tune"), path)
        if "extends" in data:
            parent_name = str(data["extends"])
            if parent_name in (*chain, name) and parent_name != name:
                raise BenchError(f"{path}: 'extends' makes a cycle ({' → '.join((*chain, name, parent_name))})")
            # A model that extends its own name extends the file of that name further down the path.
            if parent_name == name and self.find("models", name, index) is None:
                raise BenchError(f"{path}: 'extends: {name}' names no model of that name further down the config path")
            parent = self._model(parent_name, index if parent_name == name else -1, (*chain, name))
            if parent_name == name:  # an override of the model of that name keeps its identity unless it says
                display, order = data.get("display", parent.display), data.get("order", parent.order)
                table = data.get("table", parent.table or "none")
            target = parent.target if "class" not in data else _subclass(_target(str(data["class"]), path), parent.target, path)
            return ModelEntry(
                name=name, target=target, display=display, table=None if table == "none" else table,
                order=order, extends=parent.extends if parent_name == name else parent.name, tune=grid or parent.tune,
                tune_owner=name if grid else parent.tune_owner, source=str(path),
                layers=(*parent.layers, (defaults, profiles)),
            )  # fmt: skip
        if "class" not in data:
            raise BenchError(f"{path}: missing 'class' (module:Class of the Recommender, or file.py:Class)")
        return ModelEntry(
            name=name, target=_target(str(data["class"]), path), display=display,
            table=None if table == "none" else table, order=order, extends=None, tune=grid,
            tune_owner=name if grid else None, source=str(path), layers=((defaults, profiles),),
        )  # fmt: skip


def _subclass(target: str, parent: str, path: Path) -> str:
    """A variant may name its own class only if it is a subclass of its parent's: it then inherits the
    parent's parameters, grid and tuned selection, and adds behavior (RCLRec's diagnostic variants)."""
    from bench.recommender import resolve  # imports torch: only for the variants that name a class

    if not issubclass(resolve(target), resolve(parent)):
        raise BenchError(f"{path}: a variant's 'class' must be a subclass of its parent's ({parent}), not {target}")
    return target


def _target(target: str, yaml_path: Path) -> str:
    """``file.py:Class`` is read relative to the YAML's folder, so a model outside the checkout needs no
    PYTHONPATH; ``module:Class`` is imported as usual."""
    module, _, attr = target.partition(":")
    if module.endswith(".py"):
        module = str((yaml_path.parent / module).resolve())
    return f"{module}:{attr}"


def _grid(grid: Any, path: Path) -> dict[str, list[Any]]:
    """A ``tune`` section: parameter → candidate values (``a,b: [...]`` sets a and b together)."""
    if grid is None:
        return {}
    if not isinstance(grid, Mapping) or not all(isinstance(v, list) and v for v in grid.values()):
        raise BenchError(f"{path}: 'tune' must map parameter names to non-empty lists of values")
    return {str(k): list(v) for k, v in grid.items()}


def dataset_name(config: str, fmt: str | None, data_path: str | None) -> str:
    """A ``csv`` log is named after its folder (``--data ../shared/data/taobao-ecomm-2019`` →
    ``taobao-ecomm-2019``); every other dataset after its YAML."""
    if fmt == "csv" and data_path is not None:
        path = Path(data_path).expanduser().resolve()
        return (path if path.is_dir() or not path.suffix else path.parent).name or config
    return config


def check_name(name: str, what: str) -> str:
    """Names become folder names: no path separators, nothing hidden, nothing empty."""
    if not name or name.startswith(".") or any(c in name for c in "/\\\0") or name.strip() != name:
        raise BenchError(f"{what} {name!r} cannot be a folder name (no '/', no leading '.', no surrounding spaces)")
    return name


def parse_sets(items: typing.Sequence[str]) -> dict[str, dict[str, Any]]:
    """``--set model.field=value`` (repeatable) → model → {field: value}; the value is read as YAML, so
    ``0.003``, ``true``, ``[1, 2]`` and ``rcpm`` mean what they mean in a model file. Typed and checked
    later, with the model's config class."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        key, eq, text = item.partition("=")
        model, dot, field = key.strip().partition(".")
        if not eq or not dot or not model or not field:
            raise BenchError(f"--set {item}: expected model.field=value, e.g. --set sasrec.learning_rate=0.003")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            raise BenchError(f"--set {item}: the value is not valid YAML") from None
        if value is None:
            raise BenchError(f"--set {item}: missing value")
        out.setdefault(model, {})[field.strip()] = value
    return out


def override(config: T, values: Mapping[str, Any], where: str) -> T:
    """``config`` with ``values`` replaced, each typed and checked like a YAML field; ``where`` names the
    origin in errors (``--set sasrec``, a grid point, a sweep value)."""
    if not values:
        return config
    fields = {f.name for f in dataclasses.fields(config)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - fields)
    if unknown:
        raise BenchError(f"{where}: unknown field '{unknown[0]}' (known: {', '.join(sorted(fields))})")
    hints = typing.get_type_hints(type(config))
    typed = {k: _coerce(v, hints[k], f"{where}: field '{k}'") for k, v in values.items()}
    return dataclasses.replace(config, **typed)  # type: ignore[type-var]


RANGES: tuple[tuple[Callable[[str], bool], Callable[[float], bool], str], ...] = (
    (lambda f: f == "learning_rate" or f.endswith("_learning_rate"), lambda v: v > 0, "> 0"),
    (lambda f: "weight_decay" in f, lambda v: v >= 0, ">= 0"),
    (lambda f: "dropout" in f, lambda v: 0 <= v < 1, "in [0, 1)"),
    (lambda f: f.startswith("mask_"), lambda v: 0 < v < 1, "in (0, 1)"),
    (lambda f: f.endswith(("epochs", "patience", "batch_size")) and not f.endswith("samples_per_epoch"), lambda v: v >= 1, ">= 1"),
)
"""Fields whose values outside a range can only produce a broken run, checked for every model by name:
(field matches, value is fine, the rule in words). A model adds its own rules in ``__post_init__``."""


def check_ranges(config: Any, where: str) -> None:
    """Reject, before anything trains, values no run can succeed with (a negative learning rate, dropout 1)."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        for matches, fine, rule in RANGES:
            if matches(f.name) and not fine(value):
                raise BenchError(f"{where}: {f.name} = {value} must be {rule}")
