"""The values ranking works on: the candidate sources and ranked items."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# The candidate sources, in the order reasons prefer them when scores tie.
SOURCES: tuple[str, ...] = (
    "collaborative",
    "semantic",
    "session",
    "trending",
    "popularity",
    "new_arrivals",
    "social",
    # Products without behaviour placed in the exposure slots (``EngineConfig.exposure_slots``):
    # ranked by similarity to the customer's interests among products nobody has touched yet.
    "exposure",
    "sequential",
)


@dataclass(frozen=True)
class RankedItem:
    """A recommended product: final score, the sources that proposed it, and why.

    ``components`` holds each source's weighted, normalised contribution; they sum to ``score``
    before diversity re-ranking (MMR keeps ``score`` and only changes the order).
    """

    index: int
    product_id: int
    score: float
    sources: tuple[str, ...]
    components: Mapping[str, float]
    reasons: tuple[str, ...]
    # Merchandising (recommender.ranking.rules): the rules that moved the item, what each did
    # ("boosted x1.5 by rule “Summer candles”"), and whether it fills a promotion slot. Kept
    # apart from ``reasons``, which the engine writes after its rules hook has run.
    rule_ids: tuple[int, ...] = ()
    rule_reasons: tuple[str, ...] = ()
    promoted: bool = False

    def to_dict(self) -> dict[str, object]:
        return {
            "product_id": self.product_id,
            "score": self.score,
            "sources": list(self.sources),
            "components": dict(self.components),
            "reasons": list(self.reasons),
            "rule_ids": list(self.rule_ids),
            "rule_reasons": list(self.rule_reasons),
            "promoted": self.promoted,
        }
