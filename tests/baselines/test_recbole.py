"""SASRec and BERT4Rec through RecBole on the harness's split."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from baselines._recbole import RecBoleModel, left_align, recbole_compat, write_atomic_files
from bench.data.preprocess import PreprocessConfig, preprocess
from bench.data.split import Histories, SplitConfig, build_split
from bench.data.synthetic import SyntheticConfig, generate
from bench.metrics import ndcg_at
from bench.recommender import Context, rank_targets
from tests.conftest import make_log


def test_left_align() -> None:
    h = Histories(
        users=np.array([0, 1]),
        items=np.array([[-1, -1, 5, 6], [1, 2, 3, 4]]),
        behaviors=np.zeros((2, 4), dtype=np.int64),
        timestamps=np.zeros((2, 4), dtype=np.int64),
        lengths=np.array([2, 4]),
    )
    left, lengths = left_align(h, max_len=3)
    assert left.tolist() == [[5, 6, -1], [2, 3, 4]] and lengths.tolist() == [2, 3]


def test_atomic_files_hold_every_training_prefix(tmp_path: Path) -> None:
    rows = [("u", x, "click", t) for t, x in enumerate("abcd")] + [("u", "e", "buy", 5), ("u", "f", "click", 6), ("u", "g", "buy", 7)]
    split = build_split(make_log(rows), SplitConfig(min_history=3))
    write_atomic_files(split, tmp_path, max_len=2)
    train = (tmp_path / "bench.train.inter").read_text().splitlines()
    ids = {name: str(i) for i, name in enumerate(split.item_ids)}
    # training part = a b c d (valid target e at pos 4); prefixes of length >= 1, histories cut to 2
    assert train[1:] == [f"0\t{ids['a']}\t{ids['b']}", f"0\t{ids['a']} {ids['b']}\t{ids['c']}", f"0\t{ids['b']} {ids['c']}\t{ids['d']}"]
    assert all(line.split("\t")[1] for line in train[1:])  # never an empty history cell
    test = (tmp_path / "bench.test.inter").read_text().splitlines()
    assert test[1] == f"0\t{ids['e']} {ids['f']}\t{ids['g']}"


@pytest.fixture(scope="module")
def split():
    log = preprocess(generate(SyntheticConfig(n_users=150, n_items=200, sessions_per_user=10.0)), PreprocessConfig())
    return build_split(log, SplitConfig(min_history=3, max_history=15))


def _fit(model_cls, config, split, tmp_path: Path):
    torch.manual_seed(0)
    ctx = Context(split=split, device=torch.device("cpu"), seed=0, work_dir=tmp_path, progress=False)
    model = model_cls(config, ctx)
    report = model.fit(split)
    return model, report, rank_targets(model, split, split.test, 256, progress=False)


def _recbole_ranks(model: RecBoleModel) -> np.ndarray:
    """(T,) float ranks of the test targets from RecBole's own test loader (its files, ids and batches)."""
    theirs = []
    with recbole_compat(), torch.no_grad():
        model.module.eval()
        for interaction, _, _, positive_i in model.recbole_test_data:
            scores = model.module.full_sort_predict(interaction)
            scores[:, 0] = -float("inf")  # padding column
            target = scores[torch.arange(len(positive_i)), positive_i]
            theirs.append((scores >= target[:, None]).sum(1).numpy())
    return np.concatenate(theirs).astype(float)


@pytest.mark.slow
def test_sasrec_learns_is_deterministic_and_maps_items(split, tmp_path: Path) -> None:
    from baselines.pop import Pop, PopConfig
    from baselines.sasrec import SASRec, SASRecConfig

    torch.set_num_threads(1)
    cfg = SASRecConfig(n_layers=1, hidden_size=16, inner_size=32, max_len=15, epochs=3, patience=3)
    model, report, ranks = _fit(SASRec, cfg, split, tmp_path / "a")
    assert report.best_epoch >= 0 and len(report.valid_curve) == 3
    # Our inputs and score columns agree with RecBole's own test pipeline (its files, ids and loader).
    assert np.array_equal(_recbole_ranks(model), ranks)
    _, _, again = _fit(SASRec, cfg, split, tmp_path / "b")
    assert np.array_equal(ranks, again)  # same seed, same numbers on CPU
    _, _, pop_ranks = _fit(Pop, PopConfig(), split, tmp_path / "c")
    assert ndcg_at(ranks, 10).mean() > ndcg_at(pop_ranks, 10).mean()
    assert not torch.is_anomaly_enabled()  # RecBole's import switches it on; the adapter switches it off
    assert sys.argv[0] and "CUDA_VISIBLE_DEVICES" not in __import__("os").environ


@pytest.mark.slow
def test_bert4rec_trains_and_ranks(split, tmp_path: Path) -> None:
    from baselines.bert4rec import BERT4Rec, BERT4RecConfig

    cfg = BERT4RecConfig(n_layers=1, hidden_size=16, inner_size=32, max_len=15, epochs=1, patience=1)
    model, report, ranks = _fit(BERT4Rec, cfg, split, tmp_path)
    assert len(report.valid_curve) == 1
    assert ranks.min() >= 1 and ranks.max() <= split.n_items and len(ranks) == len(split.test)
    # Our inputs and score columns agree with RecBole's own test pipeline, whose full_sort_predict appends
    # [MASK] after each history and drops the oldest item: the harness ranks what RecBole's BERT4Rec ranks.
    assert np.array_equal(_recbole_ranks(model), ranks)
    # The loss at the real masked slots only is RecBole's loss over every slot, padded ones weighted 0.
    with recbole_compat(), torch.no_grad():
        model.module.eval()  # no dropout: both losses see the same forward pass
        for i, batch in enumerate(model.recbole_train_data):
            ours, theirs = model.loss(batch), model.module.calculate_loss(batch)
            assert abs(float(ours) - float(theirs)) < 1e-6 * max(1.0, abs(float(theirs))), i
            if i == 3:
                break
