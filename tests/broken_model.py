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


@dataclass(frozen=True)
class DivergingConfig:
    epochs: int = 5
    patience: int = 5
    nan_from_epoch: int = 2
    """1-based: the epoch whose loss is NaN (earlier epochs train normally)."""


class Diverging(ScoringModel):
    """A linear popularity model whose training loss turns NaN at ``nan_from_epoch``, as a diverging
    optimiser's would: the shared loop must stop it, and the runner must save nothing."""

    Config = DivergingConfig

    def fit(self, split) -> FitReport:  # noqa: ANN001
        import numpy as np
        import torch

        from bench.training import fit_model, minibatch_epoch

        self.bias = torch.nn.Parameter(torch.zeros(split.n_items))
        module = torch.nn.ParameterList([self.bias])
        optimizer = torch.optim.SGD(module.parameters(), lr=0.1)
        items = torch.as_tensor(split.items[split.train_mask()])

        def run_epoch(epoch: int) -> float:
            def loss_of(idx: np.ndarray) -> torch.Tensor:
                loss = torch.nn.functional.cross_entropy(self.bias.expand(len(idx), -1), items[idx])
                return loss * float("nan") if epoch + 1 >= self.config.nan_from_epoch else loss

            return minibatch_epoch(len(items), 512, epoch, 0, optimizer, torch.device("cpu"), loss_of)

        return fit_model(self, module, optimizer, run_epoch, split, "diverging")

    def score(self, histories):  # noqa: ANN001, ANN201
        return self.bias.detach().expand(len(histories.users), -1)
