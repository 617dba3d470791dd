"""The user's own recent items, weighted by behavior: the floor every neural model has to clear.

On the real logs in ../shared/data about 80% of purchase targets were interacted with earlier, so a
model that cannot beat "buy what you just carted" has learned nothing useful.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from baselines.pop import Pop, PopConfig
from bench.data.split import Histories, Split
from bench.recommender import FitReport, ScoringModel, validation_ndcg10


@dataclass(frozen=True)
class RecentConfig:
    behavior_weights: tuple[float, ...] = (1.0, 2.0, 3.0, 2.0)
    """Weight of click, fav, cart, buy."""
    decay: float = 0.9
    """Each step back in time multiplies an interaction's weight by this."""


class Recent(ScoringModel):
    """score(i) = Σ over the user's history occurrences of i of w_behavior · decay^(steps back), then the
    conversion-popularity order (:class:`~baselines.pop.Pop`) for items the user never touched."""

    Config = RecentConfig

    def fit(self, split: Split) -> FitReport:
        self.pop = Pop(PopConfig(), self.ctx)
        self.pop.fit(split)
        popularity = self.pop.popularity
        self.fallback = popularity / (popularity.max() + 1.0)  # in [0, 1)
        self.weights = torch.as_tensor(self.config.behavior_weights, dtype=torch.float64)
        return FitReport(best_valid_ndcg10=validation_ndcg10(self, split, self.ctx.eval_batch_size))

    def score(self, histories: Histories) -> torch.Tensor:
        items = torch.as_tensor(histories.items)
        behaviors = torch.as_tensor(histories.behaviors)
        mask = items >= 0
        n = items.shape[1]
        steps_back = torch.arange(n - 1, -1, -1, dtype=torch.float64)
        weight = self.weights[behaviors.clamp(min=0)] * self.config.decay**steps_back
        weight = torch.where(mask, weight, torch.zeros_like(weight))
        personal = torch.zeros(len(histories), len(self.fallback), dtype=torch.float64)
        personal.scatter_add_(1, items.clamp(min=0), weight)
        # Any touched item outranks every untouched one: scale the fallback below the smallest weight.
        floor = float(self.weights.min()) * self.config.decay ** (n - 1)
        return personal + floor * self.fallback
