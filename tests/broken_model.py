"""A model that fails in fit, for the runner's "one failure does not stop the others" test."""

from __future__ import annotations

from dataclasses import dataclass

from bench.recommender import FitReport, ScoringModel


@dataclass(frozen=True)
class BrokenConfig:
    pass


class Broken(ScoringModel):
    Config = BrokenConfig

    def fit(self, split) -> FitReport:  # noqa: ANN001
        raise RuntimeError("deliberately broken")

    def score(self, histories):  # noqa: ANN001, ANN201
        raise AssertionError("never reached")
