"""Hand-computed metric values (one relevant item per target)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bench.errors import NumericalError
from bench.metrics import ndcg_at, per_target, ranks_from_lists, ranks_from_scores, recall_at, summarize


@pytest.mark.parametrize(
    ("rank", "recall", "ndcg"),
    [(1, 1.0, 1.0), (2, 1.0, 1 / math.log2(3)), (3, 1.0, 0.5), (10, 1.0, 1 / math.log2(11)), (11, 0.0, 0.0)],
)
def test_rank_to_metric_at_10(rank: int, recall: float, ndcg: float) -> None:
    assert recall_at(np.array([rank]), 10)[0] == recall
    assert ndcg_at(np.array([rank]), 10)[0] == pytest.approx(ndcg)


def test_ranks_from_scores_by_hand() -> None:
    scores = torch.tensor([[0.9, 0.1, 0.5, 0.3], [0.9, 0.1, 0.5, 0.3]])
    assert ranks_from_scores(scores, torch.tensor([0, 3])).tolist() == [1, 3]


def test_ties_are_pessimistic() -> None:
    scores = torch.tensor([[0.5, 0.5, 0.5, 0.1]])
    assert ranks_from_scores(scores, torch.tensor([1])).tolist() == [3]


def test_all_equal_scores_score_about_zero() -> None:
    n = 1000
    ranks = ranks_from_scores(torch.zeros(4, n), torch.tensor([0, 1, 2, 999])).numpy()
    assert list(ranks) == [n] * 4
    assert summarize(ranks)["ndcg@10"] == 0.0 and summarize(ranks)["recall@10"] == 0.0


def test_permuting_item_ids_changes_nothing() -> None:
    gen = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 5, (16, 50), generator=gen).float()  # many ties on purpose
    targets = torch.randint(0, 50, (16,), generator=gen)
    perm = torch.randperm(50, generator=gen)
    inverse = torch.argsort(perm)
    a = ranks_from_scores(scores, targets)
    b = ranks_from_scores(scores[:, perm], inverse[targets])
    assert torch.equal(a, b)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_scores_are_an_error(bad: float) -> None:
    with pytest.raises(NumericalError, match="non-finite scores"):
        ranks_from_scores(torch.tensor([[0.1, bad]]), torch.tensor([0]))


def test_generated_lists_miss_when_absent() -> None:
    lists = np.array([[4, 2, 7], [1, -1, -1], [3, 5, 6]])
    ranks = ranks_from_lists(lists, np.array([7, 1, 9]))
    assert ranks[0] == 3 and ranks[1] == 1 and math.isinf(ranks[2])
    m = per_target(ranks)
    assert list(m["recall@5"]) == [1.0, 1.0, 0.0] and m["ndcg@10"][2] == 0.0


def test_summary_breaks_down_repeat_and_new() -> None:
    s = summarize(np.array([1.0, 20.0, 2.0]), np.array([True, True, False]))
    assert s["recall@10"] == pytest.approx(2 / 3)
    assert s["repeat/recall@10"] == 0.5 and s["new/recall@10"] == 1.0
    assert s["repeat/n_targets"] == 2 and s["new/n_targets"] == 1
