"""The one interface every model implements, and the one place its output becomes target ranks.

A model is built from its config dataclass and a :class:`Context` (catalogue size, features, device,
seed), is fitted on the split's training part with early stopping on validation NDCG@10, and then either
scores the whole catalogue (:class:`ScoringModel`) or generates a ranked list (:class:`GenerativeModel`).
Models never read files or parse arguments; the harness never knows a model's internals.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.util
import sys
from abc import ABC, abstractmethod
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from tqdm.auto import tqdm

from bench.data.split import Histories, Split, Targets
from bench.errors import BenchError
from bench.metrics import ndcg_at, ranks_from_lists, ranks_from_scores
from bench.seeding import stage_seed
from bench.semantic_ids import SemanticIdConfig, SemanticIds, load_or_fit


@dataclass(frozen=True)
class Context:
    """What a model may know about the run, besides its own config."""

    split: Split
    device: torch.device
    seed: int
    eval_batch_size: int = 256
    work_dir: Path | None = None
    """Scratch folder for models that need files (RecBole); removed by the runner afterwards."""
    progress: bool = True
    checkpoint: Path | None = None
    """Where a trained model keeps its per-epoch checkpoint, so an interrupted run resumes."""
    semantic_id_config: SemanticIdConfig = SemanticIdConfig()
    cache_dir: Path | None = None
    """Where the split's artifacts (semantic IDs) are cached."""

    def epoch_seed(self, epoch: int, salt: int = 0) -> int:
        """The seed of one training epoch's sample order: a function of the run's seed and the epoch only,
        so a run resumed from a checkpoint sees the same batches (``salt`` separates a model's stages)."""
        return self.seed * 100_003 + epoch + salt

    def stage_seed(self, stage: str) -> int:
        """The seed a training stage sets at its start (:func:`bench.seeding.stage_seed`): the stage's
        random draws (dropout, masks, negatives) depend only on the run's seed and the stage's name."""
        return stage_seed(self.seed, stage)

    def semantic_ids(self) -> SemanticIds:
        """The split's semantic IDs: fitted once on its training part, then read from the cache."""
        return load_or_fit(self.split, self.semantic_id_config, self.cache_dir)


@dataclass
class FitReport:
    """What ``fit`` tells the runner: the chosen epoch and the validation curve."""

    best_epoch: int = 0
    best_valid_ndcg10: float = float("nan")
    valid_curve: list[float] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


class Recommender(ABC):
    """Base of every model. Subclasses set ``Config`` to their frozen config dataclass."""

    Config: ClassVar[type]

    def __init__(self, config: Any, ctx: Context) -> None:
        self.config = config
        self.ctx = ctx

    @classmethod
    def shared_stage(cls, config: Any, seed: int) -> Hashable | None:
        """What identifies a first training stage that runs of one split may share through the cache (RCLRec's
        θ0), or None. The runs of a plan with equal values train it once, so ``--dry-run`` counts its time
        once per value. It must follow what the model's cache key reads from the config and seed."""
        return None

    @classmethod
    def shared_stage_cached(cls, config: Any, ctx: Context) -> bool:
        """Whether the cache (``ctx.cache_dir``) already holds that first stage for this config and
        ``ctx``'s seed, so a run would only read it (``--dry-run`` then leaves its time out)."""
        return False

    @abstractmethod
    def fit(self, split: Split) -> FitReport:
        """Train on ``split``'s training part; select the epoch on ``split.valid`` NDCG@10 (see
        :func:`validation_ndcg10`) and keep the best weights."""

    @abstractmethod
    def rank(self, histories: Histories, targets: np.ndarray) -> np.ndarray:
        """(B,) float64 1-based ranks of ``targets`` given ``histories``; see the two subclasses."""


class ScoringModel(Recommender):
    """A model that scores every item of the catalogue."""

    @abstractmethod
    def score(self, histories: Histories) -> torch.Tensor:
        """(B, I) float scores, higher is better, for the batch's users."""

    def rank(self, histories: Histories, targets: np.ndarray) -> np.ndarray:
        scores = self.score(histories).float().cpu()
        return ranks_from_scores(scores, torch.as_tensor(targets)).numpy().astype(np.float64)


class GenerativeModel(Recommender):
    """A model that generates a ranked list of unique items (e.g. by beam search)."""

    list_size: int = 10
    beam_width: int = 10

    @abstractmethod
    def recommend(self, histories: Histories, k: int) -> np.ndarray:
        """(B, k) int64 unique items in rank order, -1 padding where fewer were generated."""

    def rank(self, histories: Histories, targets: np.ndarray) -> np.ndarray:
        lists = self.recommend(histories, self.list_size)
        self.list_lengths.append((lists >= 0).sum(axis=1))
        return ranks_from_lists(lists, targets)

    @property
    def list_lengths(self) -> list[np.ndarray]:
        """Lengths of the lists generated since the last :meth:`generation_stats` call."""
        if not hasattr(self, "_list_lengths"):
            self._list_lengths: list[np.ndarray] = []
        return self._list_lengths

    def generation_stats(self, ranks: np.ndarray) -> dict[str, Any]:
        """Beam width, share of targets found in the list, mean list length (then resets the lengths)."""
        lengths = np.concatenate(self.list_lengths) if self.list_lengths else np.zeros(0)
        self.list_lengths.clear()
        return {
            "beam_width": self.beam_width,
            "list_size": self.list_size,
            "found_share": float(np.isfinite(ranks).mean()) if len(ranks) else 0.0,
            "mean_list_length": float(lengths.mean()) if len(lengths) else 0.0,
        }


@torch.no_grad()
def rank_targets(
    model: Recommender, split: Split, targets: Targets, batch_size: int, desc: str = "", progress: bool = True
) -> np.ndarray:
    """(T,) float64 rank of each target, batched, with a progress bar."""
    histories_all = split.histories(targets)
    out = np.empty(len(targets), dtype=np.float64)
    starts = range(0, len(targets), batch_size)
    for start in tqdm(starts, desc=desc or "rank", leave=False, disable=not progress or None, unit="batch"):
        sl = slice(start, start + batch_size)
        batch = Histories(*(getattr(histories_all, f)[sl] for f in ("users", "items", "behaviors", "timestamps", "lengths")))
        out[sl] = model.rank(batch, targets.item[sl])
    return out


def validation_ndcg10(model: Recommender, split: Split, batch_size: int) -> float:
    """Mean NDCG@10 on the validation targets: the model-selection criterion of every model."""
    ranks = rank_targets(model, split, split.valid, batch_size, desc="valid", progress=False)
    return float(ndcg_at(ranks, 10).mean())


# ---------------------------------------------------------------------------------- registry


def resolve(target: str) -> type[Recommender]:
    """The class named by a model YAML's ``class``: ``module:Class`` (imported) or ``/path/file.py:Class``
    (loaded from the file, for a model kept outside any package)."""
    module_name, _, attr = target.rpartition(":")
    try:
        module = _load_file(module_name) if module_name.endswith(".py") else importlib.import_module(module_name)
        cls = getattr(module, attr)
    except (ImportError, AttributeError, FileNotFoundError) as err:
        raise BenchError(f"cannot import model class '{target}' ({err})") from None
    if not (isinstance(cls, type) and issubclass(cls, Recommender)):
        raise BenchError(f"'{target}' is not a Recommender subclass")
    return cls


def _load_file(path: str):  # noqa: ANN202 - a module
    """Import a Python file once, under a name derived from its path (so its classes pickle by name)."""
    name = "bench_user_model_" + hashlib.sha256(path.encode()).hexdigest()[:12]
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"{path} is not a Python file")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
    return sys.modules[name]


def config_dict(config: Any) -> Mapping[str, Any]:
    return dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)

