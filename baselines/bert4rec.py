"""BERT4Rec (Sun et al., CIKM 2019) through RecBole 1.2.1: bidirectional masked-item model over the mixed
item sequence, CE over all items. It has no behavior input. RecBole (like upstream) masks only items
inside the history, never the row's target, and at inference appends [MASK] and drops the oldest item."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from baselines._recbole import RecBoleModel


@dataclass(frozen=True)
class BERT4RecConfig:
    # RecBole's own names and defaults (properties/model/BERT4Rec.yaml).
    n_layers: int = 2
    n_heads: int = 2
    hidden_size: int = 64
    inner_size: int = 256
    hidden_dropout_prob: float = 0.2
    attn_dropout_prob: float = 0.2
    hidden_act: str = "gelu"
    layer_norm_eps: float = 1e-12
    initializer_range: float = 0.02
    mask_ratio: float = 0.2
    loss_type: str = "CE"
    transform: str = "mask_itemseq"
    ft_ratio: float = 0.5
    # The harness's training loop.
    max_len: int = 50
    epochs: int = 50
    patience: int = 5
    learning_rate: float = 0.001
    train_batch_size: int = 256


class BERT4Rec(RecBoleModel):
    Config = BERT4RecConfig
    recbole_name = "BERT4Rec"

    def loss(self, interaction: Any) -> torch.Tensor:
        """RecBole's CE objective, computed only at the real masked positions.

        RecBole scores the whole catalogue at every one of the ``mask_len`` slots of every row and then
        weights the padded slots by 0; about two thirds of the slots are padding, and the (B, mask_len, I)
        logits dominate an epoch. Gathering the real slots first gives the same mean cross-entropy over the
        same (position, target) pairs (tested against ``calculate_loss``) at a fraction of the work.
        """
        m = self.module
        if m.loss_type != "CE":
            return m.calculate_loss(interaction)
        masked_index = interaction[m.MASK_INDEX]  # (B, mask_len) positions, 0 = a padded slot (as RecBole reads it)
        hidden = m.forward(interaction[m.MASK_ITEM_SEQ])  # (B, T, H)
        real = masked_index > 0
        rows = torch.arange(len(masked_index), device=masked_index.device)[:, None].expand_as(masked_index)
        states = hidden[rows[real], masked_index[real]]  # (N, H): one per real masked slot
        logits = states @ m.item_embedding.weight[: m.n_items].T + m.output_bias
        return F.cross_entropy(logits, interaction[m.POS_ITEMS][real])
