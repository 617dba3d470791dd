"""Popularity of conversions: the sanity floor every model must clear."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from bench.data.log import BUY
from bench.data.split import Histories, Split
from bench.recommender import FitReport, ScoringModel, validation_ndcg10


@dataclass(frozen=True)
class PopConfig:
    pass


class Pop(ScoringModel):
    """Ranks items by their number of purchases in the training part of the split, ties broken by their
    number of interactions of any behavior. The same list for every user."""

    Config = PopConfig

    def fit(self, split: Split) -> FitReport:
        train = split.train_mask()
        items, behaviors = split.items[train], split.behaviors[train]
        buys = np.bincount(items[behaviors == BUY], minlength=split.n_items).astype(np.float64)
        every = np.bincount(items, minlength=split.n_items).astype(np.float64)
        # Lexicographic (buys, interactions): the second term is < 1, so it only breaks ties.
        self.popularity = torch.as_tensor(buys + every / (every.max() + 1.0))
        return FitReport(best_valid_ndcg10=validation_ndcg10(self, split, self.ctx.eval_batch_size))

    def score(self, histories: Histories) -> torch.Tensor:
        return self.popularity.expand(len(histories), -1)
