from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.config import Configs, from_dict, merge, override, parse_sets
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


def test_override_types_values_and_rejects_unknown_fields() -> None:
    assert override(Toy(), {"lr": 1, "weights": [3]}, "--set toy") == Toy(lr=1.0, weights=(3.0,))
    with pytest.raises(BenchError, match=r"--set toy: unknown field 'depth'"):
        override(Toy(), {"depth": 3}, "--set toy")
    with pytest.raises(BenchError, match=r"--set toy: field 'layers' must be a whole number, not 'two'"):
        override(Toy(), {"layers": "two"}, "--set toy")


def test_parse_sets_reads_values_as_yaml() -> None:
    assert parse_sets(["sasrec.learning_rate=0.003", "rclrec.prefix=recent", "sasrec.max_len=20"]) == {
        "sasrec": {"learning_rate": 0.003, "max_len": 20},
        "rclrec": {"prefix": "recent"},
    }
    for bad in ("sasrec=1", "learning_rate=0.1", "sasrec.lr", "sasrec.lr="):
        with pytest.raises(BenchError, match="--set"):
            parse_sets([bad])


def test_profile_overrides_dataset() -> None:
    configs = Configs()
    assert configs.dataset("synthetic", "smoke").synthetic.n_users == 300
    assert configs.dataset("synthetic", "cpu").synthetic.n_users == 1500
    assert configs.dataset("csv", "cpu", "some/folder").data == "some/folder"


def test_dataset_names() -> None:
    configs = Configs()
    assert configs.dataset("csv", "cpu", "../shared/data/taobao-ecomm-2019").name == "taobao-ecomm-2019"
    assert configs.dataset("csv", "cpu", "../shared/data/taobao-ecomm-2019/").name == "taobao-ecomm-2019"
    assert configs.dataset("csv", "cpu", "x/taobao", display_name="mine").name == "mine"
    tmall = configs.dataset("tmall", "cpu", "/data/user_log_format1.csv")
    assert (tmall.name, tmall.config) == ("tmall", "tmall")
    with pytest.raises(BenchError, match="cannot be a folder name"):
        configs.dataset("csv", "cpu", "x", display_name="a/b")


def test_model_profiles_merge_over_defaults() -> None:
    sasrec = Configs().model("sasrec")
    smoke, cpu = sasrec.params("smoke"), sasrec.params("cpu")
    assert smoke["hidden_size"] == 32 and cpu["hidden_size"] == 64
    assert smoke["n_heads"] == cpu["n_heads"] == 2
    assert (sasrec.display, sasrec.table, sasrec.extends, sasrec.tune_owner) == ("SASRec", "table1", None, "sasrec")


def test_a_variant_inherits_everything_but_its_identity() -> None:
    configs = Configs()
    parent, variant = configs.model("rclrec"), configs.model("rclrec-no-qal")
    for profile in ("smoke", "cpu", "paper"):
        assert variant.params(profile) == {**parent.params(profile), "lam": 0.0}
    assert variant.target == parent.target and variant.tune == parent.tune
    assert (variant.display, variant.table, variant.extends, variant.tune_owner) == (
        "w/o quality-aware loss", "table2", "rclrec", "rclrec")


def _yaml(root: Path, kind: str, name: str, text: str) -> Path:
    path = root / kind / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return root


def test_a_config_dir_adds_and_overrides(tmp_path: Path) -> None:
    root = _yaml(tmp_path, "models", "cat-pop", "class: baselines.pop:Pop\ndisplay: CatPop\n")
    _yaml(root, "models", "sasrec", "extends: sasrec\ndisplay: SASRec (mine)\nprofiles: {cpu: {epochs: 7}}\n")
    _yaml(root, "models", "rclrec-no-qal", "extends: rclrec-no-qal\ndefaults: {margin: 0.1}\n")
    _yaml(root, "profiles", "tiny", "seeds: 2\n")
    configs = Configs([root])
    assert configs.model("cat-pop").table == "table1"  # a name with '-' is a model like any other
    assert "cat-pop" in [e.name for e in configs.models("table1")]
    mine = configs.model("sasrec")  # extends the built-in file of the same name
    assert mine.display == "SASRec (mine)" and mine.params("cpu")["epochs"] == 7 and mine.params("cpu")["hidden_size"] == 64
    assert (mine.table, mine.order, mine.extends) == ("table1", 30, None)  # an override keeps the identity
    no_qal = configs.model("rclrec-no-qal")
    assert (no_qal.display, no_qal.table, no_qal.extends) == ("w/o quality-aware loss", "table2", "rclrec")
    assert no_qal.params("cpu")["margin"] == 0.1 and no_qal.params("cpu")["lam"] == 0.0
    assert configs.profile("tiny")[0].seeds == 2
    assert Configs().find("models", "cat-pop") is None


def test_a_model_file_next_to_its_yaml(tmp_path: Path) -> None:
    root = _yaml(tmp_path, "models", "mine", "class: mine.py:Mine\n")
    assert Configs([root]).model("mine").target == f"{(root / 'models' / 'mine.py').resolve()}:Mine"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("class: baselines.pop:Pop\ncolour: red\n", "unknown top-level key 'colour'"),
        ("display: X\n", "missing 'class'"),
        ("class: baselines.pop:Pop\ntable: table3\n", "'table' must be one of table1, table2, none"),
        ("extends: nope\n", "unknown model 'nope'"),
        ("extends: loop\n", "'extends: loop' names no model of that name further down"),
        ("extends: pop\nclass: baselines.recent:Recent\n", r"a variant's 'class' must be a subclass of its parent's \(baselines.pop:Pop\)"),
        ("class: baselines.pop:Pop\ntune: {lr: 0.1}\n", "'tune' must map parameter names to non-empty lists"),
    ],
)
def test_bad_model_files(tmp_path: Path, text: str, message: str) -> None:
    root = _yaml(tmp_path, "models", "loop", text)
    with pytest.raises(BenchError, match=message):
        Configs([root]).model("loop")


def test_cycles_are_errors(tmp_path: Path) -> None:
    root = _yaml(tmp_path, "models", "a", "extends: b\n")
    _yaml(root, "models", "b", "extends: a\n")
    with pytest.raises(BenchError, match="cycle"):
        Configs([root]).model("a")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c: c.profile("huge"), "unknown profile 'huge'"),
        (lambda c: c.dataset("nope", "cpu"), "unknown dataset 'nope'"),
        (lambda c: c.model("gpt5"), "unknown model 'gpt5'"),
    ],
)
def test_unknown_names(call, message: str) -> None:
    with pytest.raises(BenchError, match=message):
        call(Configs())


def test_a_missing_config_dir_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(BenchError, match="config folder does not exist"):
        Configs([tmp_path / "nope"])


def test_every_shipped_config_loads() -> None:
    from bench.recommender import resolve

    configs = Configs()
    for entry in configs.models():
        for profile in ("smoke", "cpu", "paper"):
            params = entry.params(profile)
            config = from_dict(resolve(entry.target).Config, params, entry.source)
            for key, value in params.items():  # every YAML value reaches the typed config, none is dropped
                assert getattr(config, key) == (tuple(value) if isinstance(value, list) else value), (entry.name, profile, key)
    for dataset in ("synthetic", "tmall", "taobao", "csv"):
        for profile in ("smoke", "cpu", "paper"):
            ds = configs.dataset(dataset, profile)
            assert (ds.name, ds.config) == (dataset, dataset)
    assert configs.dataset("tmall", "smoke").preprocess.max_users == 500
    assert configs.dataset("tmall", "cpu").preprocess.max_users == 5000
    assert configs.dataset("tmall", "paper").preprocess.max_users is None


def test_the_budget_rule_at_the_cpu_profile() -> None:
    """Every trained model at the `cpu` profile: the same patience, a cap that is only a safety bound, and
    epochs that cover the training data (no sampled subset)."""
    from bench.recommender import resolve

    configs = Configs()
    for entry in configs.models("table1"):
        config = from_dict(resolve(entry.target).Config, entry.params("cpu"), entry.source)
        fields = vars(config)
        for prefix in ("", "pretrain_"):
            if f"{prefix}epochs" in fields:
                assert fields[f"{prefix}patience"] == 10, (entry.name, prefix)
                assert fields[f"{prefix}epochs"] >= 100, (entry.name, prefix)
                assert fields.get(f"{prefix}samples_per_epoch", 0) == 0, (entry.name, prefix)
