"""SASRec (Kang & McAuley, ICDM 2018) through RecBole 1.2.1: causal self-attention over the mixed item
sequence (every behavior), full-softmax cross-entropy. It has no behavior input."""

from __future__ import annotations

from dataclasses import dataclass

from baselines._recbole import RecBoleModel


@dataclass(frozen=True)
class SASRecConfig:
    # RecBole's own names and defaults (properties/model/SASRec.yaml).
    n_layers: int = 2
    n_heads: int = 2
    hidden_size: int = 64
    inner_size: int = 256
    hidden_dropout_prob: float = 0.5
    attn_dropout_prob: float = 0.5
    hidden_act: str = "gelu"
    layer_norm_eps: float = 1e-12
    initializer_range: float = 0.02
    loss_type: str = "CE"
    # The harness's training loop.
    max_len: int = 50
    epochs: int = 50
    patience: int = 5
    learning_rate: float = 0.001
    train_batch_size: int = 256


class SASRec(RecBoleModel):
    Config = SASRecConfig
    recbole_name = "SASRec"
