"""Running RecBole 1.2.1 models on the harness's own split (see ../shared/notes/recbole.md).

RecBole builds the model and its training batches (for BERT4Rec, its own masking transform); the harness
keeps the split, the training loop, early stopping on validation NDCG@10 and the ranking, so SASRec and
BERT4Rec are selected and evaluated exactly like every native model. RecBole's trainer is not used: it
rounds validation scores to 4 decimals, reloads checkpoints with a pickle that torch >= 2.6 refuses, and
writes log folders into the working directory.

The compatibility shims below are scoped to :func:`recbole_compat` and undone on exit.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from bench.data.split import Histories, Split
from bench.recommender import Context, FitReport, ScoringModel
from bench.training import fit_model, optimizer_step

NAME = "bench"
_NUMPY_ALIASES = {"float_": np.float64, "complex_": np.complex128, "unicode_": np.str_}


@contextmanager
def recbole_compat() -> Iterator[None]:
    """Make RecBole 1.2.1 run on numpy 2 / pandas 3 / torch >= 2.6, and keep it from touching the
    process: ``Config()`` parses ``sys.argv`` and sets ``CUDA_VISIBLE_DEVICES``; both are restored."""
    saved_argv, saved_cuda = sys.argv, os.environ.get("CUDA_VISIBLE_DEVICES")
    added = [name for name in _NUMPY_ALIASES if not hasattr(np, name)]
    for name in added:
        setattr(np, name, _NUMPY_ALIASES[name])
    original_agg = pd.Series.agg

    def agg(self: pd.Series, func: Any = None, *args: Any, **kwargs: Any) -> Any:
        # pandas 3 aggregates Series.agg(len) to one number; RecBole wants per-element lengths.
        if func is len:
            return self.map(len)
        return original_agg(self, func, *args, **kwargs)

    pd.Series.agg = agg  # type: ignore[method-assign]
    sys.argv = sys.argv[:1]
    try:
        with warnings.catch_warnings():
            # RecBole's chained inplace fillna warns under pandas 3 (harmless: we never write empty cells).
            warnings.simplefilter("ignore")
            yield
    finally:
        pd.Series.agg = original_agg  # type: ignore[method-assign]
        for name in added:
            delattr(np, name)
        sys.argv = saved_argv
        if saved_cuda is None:
            os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = saved_cuda


def import_recbole() -> Any:
    """Import the parts of RecBole the adapter uses. Importing its sequential models switches on
    ``torch.autograd.set_detect_anomaly(True)`` globally (sine.py); switch it off again (~1.9x faster
    backward, bit-identical losses)."""
    with recbole_compat():
        import recbole.config
        import recbole.data
        import recbole.model.sequential_recommender  # noqa: F401 - the import that enables anomaly mode
        import recbole.utils
    torch.autograd.set_detect_anomaly(False)
    return recbole


def write_atomic_files(split: Split, folder: Path, max_len: int) -> None:
    """``bench.{train,valid,test}.inter`` and ``bench.item`` in RecBole's atomic format.

    Train rows are every prefix of each user's training sequence (history → next item, all behaviors);
    the valid and test rows are the held-out targets. Histories are the last ``max_len`` items, and never
    empty (an empty cell crashes RecBole under pandas 3).
    """
    folder.mkdir(parents=True, exist_ok=True)
    header = "user_id:token\titem_id_list:token_seq\titem_id:token\n"
    users, lengths = split.train_sequences()
    with open(folder / f"{NAME}.train.inter", "w") as fh:
        fh.write(header)
        for u, n in zip(users, lengths):
            seq = split.items[split.offsets[u] : split.offsets[u] + n]
            for t in range(1, n):
                hist = " ".join(map(str, seq[max(0, t - max_len) : t]))
                fh.write(f"{u}\t{hist}\t{seq[t]}\n")
    for part in ("valid", "test"):
        targets = getattr(split, part)
        hist = split.histories(targets, max_len)
        with open(folder / f"{NAME}.{part}.inter", "w") as fh:
            fh.write(header)
            for u, row, item in zip(targets.user, hist.items, targets.item):
                fh.write(f"{u}\t{' '.join(map(str, row[row >= 0]))}\t{item}\n")
    with open(folder / f"{NAME}.item", "w") as fh:
        fh.write("item_id:token\n" + "".join(f"{i}\n" for i in range(split.n_items)))


def left_align(histories: Histories, max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Right-aligned, -1-padded (B, N) items → RecBole's left-aligned (B, max_len) ids (0 = pad), lengths."""
    items = histories.items[:, -max_len:]
    lengths = (items >= 0).sum(axis=1)
    n = items.shape[1]
    cols = (np.arange(n)[None, :] + (n - lengths)[:, None]) % n
    left = np.take_along_axis(items, cols, axis=1)
    left = np.where(np.arange(n)[None, :] < lengths[:, None], left, -1)
    return left, lengths


class RecBoleModel(ScoringModel):
    """A RecBole sequential model trained and evaluated on the harness's split.

    Subclasses set ``recbole_name`` (RecBole's model name); their ``Config`` dataclass fields are passed
    to RecBole's config under the same names, except the training-loop fields below.
    """

    recbole_name: str
    _LOOP_FIELDS = ("epochs", "patience", "learning_rate", "train_batch_size", "max_len")

    def __init__(self, config: Any, ctx: Context) -> None:
        super().__init__(config, ctx)
        if ctx.work_dir is None:
            raise ValueError("RecBole models need Context.work_dir")

    def _recbole_config(self) -> dict[str, Any]:
        params = {k: v for k, v in asdict(self.config).items() if k not in self._LOOP_FIELDS}
        device = self.ctx.device
        return {
            **params,
            "data_path": str(self.ctx.work_dir),
            "dataset": NAME,
            "benchmark_filename": ["train", "valid", "test"],
            "alias_of_item_id": ["item_id_list"],
            "load_col": {"inter": ["user_id", "item_id_list", "item_id"], "item": ["item_id"]},
            "eval_args": {"order": "TO", "group_by": "user", "mode": "full"},  # no split: files are pre-split
            "train_neg_sample_args": None,
            "MAX_ITEM_LIST_LENGTH": self.config.max_len,
            "train_batch_size": self.config.train_batch_size,
            "eval_batch_size": self.ctx.eval_batch_size,
            "learning_rate": self.config.learning_rate,
            "seed": self.ctx.seed,
            "reproducibility": True,
            "use_gpu": device.type == "cuda",
            "gpu_id": str(device.index or 0) if device.type == "cuda" else "",
            "checkpoint_dir": str(self.ctx.work_dir / "saved"),
            "show_progress": False,
            "save_dataset": False,
            "save_dataloaders": False,
            "worker": 0,
            "log_wandb": False,
        }

    def fit(self, split: Split) -> FitReport:
        recbole = import_recbole()
        from recbole.config import Config
        from recbole.data import create_dataset, data_preparation
        from recbole.utils import get_model, init_seed

        write_atomic_files(split, self.ctx.work_dir / NAME, self.config.max_len)
        with recbole_compat():
            config = Config(model=self.recbole_name, dataset=NAME, config_dict=self._recbole_config())
            init_seed(self.ctx.seed, True)
            dataset = create_dataset(config)
            train_data, _, self.recbole_test_data = data_preparation(config, dataset)
            self.recbole_train_data, self.recbole_config = train_data, config  # for tests and benchmarks
            init_seed(self.ctx.seed, True)
            self.module = get_model(self.recbole_name)(config, train_data.dataset).to(self.ctx.device)
        del recbole
        # Our item index i is RecBole token str(i); column c of RecBole's scores is token id c.
        self.columns = torch.as_tensor(dataset.token2id("item_id", [str(i) for i in range(split.n_items)]))
        self.token_of = np.asarray(self.columns)  # our index → RecBole id (for inputs)
        optimizer = torch.optim.Adam(self.module.parameters(), lr=self.config.learning_rate)

        def run_epoch(epoch: int) -> float:
            # Reseed the loader's shuffle per epoch, so a resumed run sees the same batches.
            train_data.generator.manual_seed(self.ctx.epoch_seed(epoch))
            total, batches = 0.0, 0
            with recbole_compat():
                for interaction in train_data:
                    loss = self.loss(interaction.to(self.ctx.device))
                    total, batches = total + optimizer_step(loss, optimizer, f"batch {batches + 1}"), batches + 1
            return total / max(1, batches)

        return fit_model(self, self.module, optimizer, run_epoch, split, self.recbole_name)

    def loss(self, interaction: Any) -> torch.Tensor:
        """One batch's training loss: RecBole's ``calculate_loss`` unless a model computes the same loss
        more cheaply."""
        return self.module.calculate_loss(interaction)

    @torch.no_grad()
    def score(self, histories: Histories) -> torch.Tensor:
        from recbole.data.interaction import Interaction

        left, lengths = left_align(histories, self.config.max_len)
        ids = np.where(left >= 0, self.token_of[np.maximum(left, 0)], 0)
        batch = Interaction(
            {"item_id_list": torch.as_tensor(ids), "item_length": torch.as_tensor(lengths)}
        ).to(self.ctx.device)
        self.module.eval()
        scores = self.module.full_sort_predict(batch)  # (B, RecBole ids incl. pad column 0)
        return scores[:, self.columns.to(scores.device)]
