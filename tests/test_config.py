from __future__ import annotations

from dataclasses import dataclass

import pytest

from bench.config import from_dict, load_dataset, load_model, load_profile, merge, model_names
from bench.errors import BenchError


@dataclass(frozen=True)
class Toy:
    lr: float = 0.1
    layers: int = 2
    name: str = "x"
    weights: tuple[float, ...] = (1.0,)
    cap: int | None = None


def test_from_dict_types_and_defaults() -> None:
    toy = from_dict(Toy, {"lr": 1, "weights": [1, 2], "cap": None}, "toy.yaml")
    assert toy == Toy(lr=1.0, layers=2, weights=(1.0, 2.0), cap=None)


def test_unknown_field_names_file_and_field() -> None:
    with pytest.raises(BenchError, match=r"toy.yaml: unknown field 'layer' \(known: lr, layers"):
        from_dict(Toy, {"layer": 3}, "toy.yaml")


def test_wrong_type_names_the_field() -> None:
    with pytest.raises(BenchError, match="field 'layers' must be a whole number"):
        from_dict(Toy, {"layers": 2.5}, "toy.yaml")


def test_merge_is_recursive_and_later_wins() -> None:
    assert merge({"a": {"x": 1, "y": 2}, "b": 1}, {"a": {"y": 3}}) == {"a": {"x": 1, "y": 3}, "b": 1}


def test_profile_overrides_dataset() -> None:
    assert load_dataset("synthetic", "smoke").synthetic.n_users == 300
    assert load_dataset("synthetic", "cpu").synthetic.n_users == 1500
    assert load_dataset("csv", "cpu", "some/folder").data == "some/folder"


def test_model_profiles_merge_over_defaults() -> None:
    smoke, cpu = load_model("sasrec", "smoke"), load_model("sasrec", "cpu")
    assert smoke.params["hidden_size"] == 32 and cpu.params["hidden_size"] == 64
    assert smoke.params["n_heads"] == cpu.params["n_heads"] == 2


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: load_profile("huge"), "unknown profile 'huge'"),
        (lambda: load_dataset("nope", "cpu"), "unknown dataset 'nope'"),
        (lambda: load_model("gpt5", "cpu"), "unknown model 'gpt5'"),
    ],
)
def test_unknown_names(call, message: str) -> None:
    with pytest.raises(BenchError, match=message):
        call()


def test_every_shipped_config_loads() -> None:
    from bench.recommender import resolve

    for name in model_names():
        for profile in ("smoke", "cpu", "paper"):
            spec = load_model(name, profile)
            from_dict(resolve(spec.target).Config, spec.params, spec.source)
    for dataset in ("synthetic", "tmall", "taobao", "csv"):
        for profile in ("smoke", "cpu", "paper"):
            load_dataset(dataset, profile)
