"""The sequential model's settings (:class:`SequentialConfig`), with their validation."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any


class SequentialConfigError(ValueError):
    """A sequential model setting is of the wrong type or out of range."""


@dataclass(frozen=True)
class SequentialConfig:
    """Size and training of the sequential model.

    The defaults were chosen by measurement on Online Retail (docs/evaluation.md, "Sequential
    model"): a small model (64 dimensions, 2 layers, the newest 50 products) trains in minutes on
    two CPU cores and is scored in well under a millisecond per request.
    """

    dim: int = 64
    layers: int = 2
    heads: int = 2
    max_len: int = 50
    dropout: float = 0.2
    # A learned per-product embedding added to the projected language-model vector (zero at
    # the start, so a product with few events keeps its vector's representation).
    id_embeddings: bool = True
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 128
    max_epochs: int = 20
    patience: int = 3  # Epochs without a better validation NDCG@10 before stopping.
    # Training time budget in seconds (0: none). Checked after every batch: past it, the epoch
    # under way stops, is validated like any other, and the best epoch is kept. The default
    # bounds the CPU fit of a train job (docs/evaluation.md, "Sequential model": the time on
    # the 2-core machine); a GPU worker reaches the epoch cap or early stopping first.
    max_seconds: float = 240.0
    # torch's intra-op threads while training on the CPU (0: torch's default, every core). One:
    # the model's operations are small, and on a shared 2-core machine two OpenMP threads made a
    # fit 15 times slower than one (docs/evaluation.md, "Sequential model").
    threads: int = 1
    # Full softmax over the catalogue up to this many products, sampled softmax above it.
    full_softmax_max_items: int = 20_000
    negatives: int = 2048
    validation_users: int = 2000  # Held-out customers scored after each epoch (seeded sample).
    seed: int = 0

    def __post_init__(self) -> None:
        for name, lowest in (
            ("dim", 8),
            ("layers", 1),
            ("heads", 1),
            ("max_len", 2),
            ("batch_size", 1),
            ("max_epochs", 1),
            ("patience", 1),
            ("full_softmax_max_items", 1),
            ("negatives", 1),
            ("validation_users", 1),
            ("seed", 0),
            ("threads", 0),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
                raise SequentialConfigError(
                    f"{name}: expected an integer >= {lowest}, got {value!r}"
                )
        if self.dim % self.heads:
            raise SequentialConfigError(f"heads: {self.heads} does not divide dim {self.dim}")
        for name in ("dropout", "learning_rate", "weight_decay", "max_seconds"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or value < 0
            ):
                raise SequentialConfigError(f"{name}: expected a number >= 0, got {value!r}")
        if not self.dropout < 1:
            raise SequentialConfigError(f"dropout: expected a number below 1, got {self.dropout!r}")
        if not isinstance(self.id_embeddings, bool):
            raise SequentialConfigError(
                f"id_embeddings: expected true or false, got {self.id_embeddings!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SequentialConfig:
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise SequentialConfigError(f"{unknown[0]}: unknown sequential model setting")
        return cls(**data)
