"""Configuration: YAML files in ``configs/`` merged into frozen dataclasses.

Merge order, later wins: ``configs/datasets/<name>.yaml`` → the profile's ``datasets.<name>`` section;
``configs/models/<name>.yaml`` ``defaults`` → its ``profiles.<profile>`` section → command-line overrides.
Unknown keys are errors that name the file and the field, so a typo never silently does nothing.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

from bench.data.preprocess import PreprocessConfig
from bench.data.split import SplitConfig
from bench.data.synthetic import SyntheticConfig
from bench.errors import BenchError
from bench.hashing import config_hash  # noqa: F401 - re-exported for callers of the config layer
from bench.semantic_ids import SemanticIdConfig

CONFIG_DIR = Path(os.environ.get("BENCH_CONFIG_DIR", Path(__file__).resolve().parent.parent / "configs"))

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
    format: str
    data: str | None = None
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


@dataclass(frozen=True)
class ModelSpec:
    """Where a model's class lives and its merged (still untyped) parameters for one profile."""

    name: str
    target: str
    params: Mapping[str, Any]
    source: str


def _names(kind: str) -> list[str]:
    return sorted(p.stem for p in (CONFIG_DIR / kind).glob("*.yaml"))


def load_profile(name: str) -> tuple[Profile, dict[str, Any]]:
    """The profile and its per-dataset overrides."""
    path = CONFIG_DIR / "profiles" / f"{name}.yaml"
    if not path.is_file():
        raise BenchError(f"unknown profile '{name}' (known: {', '.join(_names('profiles'))})")
    data = read_yaml(path)
    datasets = data.pop("datasets", {}) or {}
    return from_dict(Profile, {"name": name, **data}, str(path)), datasets


def load_dataset(name: str, profile: str, data_path: str | None = None) -> DatasetConfig:
    path = CONFIG_DIR / "datasets" / f"{name}.yaml"
    if not path.is_file():
        raise BenchError(f"unknown dataset '{name}' (known: {', '.join(_names('datasets'))})")
    _, overrides = load_profile(profile)
    data = merge(read_yaml(path), overrides.get(name, {}) or {})
    if data_path is not None:
        data["data"] = str(Path(data_path).expanduser())
    return from_dict(DatasetConfig, {"name": name, **data}, str(path))


def load_model(name: str, profile: str, overrides: Mapping[str, Any] | None = None) -> ModelSpec:
    path = CONFIG_DIR / "models" / f"{name}.yaml"
    if not path.is_file():
        raise BenchError(f"unknown model '{name}' (known: {', '.join(model_names())})")
    data = read_yaml(path)
    unknown = sorted(set(data) - {"class", "defaults", "profiles", "tune"})
    if unknown:
        raise BenchError(f"{path}: unknown top-level key '{unknown[0]}' (known: class, defaults, profiles, tune)")
    if "class" not in data:
        raise BenchError(f"{path}: missing 'class' (module:Class of the Recommender)")
    params = merge(data.get("defaults") or {}, (data.get("profiles") or {}).get(profile) or {})
    params = merge(params, overrides or {})
    return ModelSpec(name, str(data["class"]), params, str(path))


def load_tune_grid(name: str) -> dict[str, list[Any]]:
    """The model's ``tune`` section: parameter → candidate values (``a,b: [...]`` sets a and b together).
    Empty for models with nothing to tune."""
    path = CONFIG_DIR / "models" / f"{name}.yaml"
    if not path.is_file():
        raise BenchError(f"unknown model '{name}' (known: {', '.join(model_names())})")
    grid = read_yaml(path).get("tune") or {}
    if not isinstance(grid, Mapping) or not all(isinstance(v, list) and v for v in grid.values()):
        raise BenchError(f"{path}: 'tune' must map parameter names to non-empty lists of values")
    return {str(k): list(v) for k, v in grid.items()}


def model_names() -> list[str]:
    return _names("models")
