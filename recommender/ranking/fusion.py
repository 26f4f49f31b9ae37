"""Per-source score normalisation and the weighted blend of candidate sources."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from .types import RankedItem

# A merchandising rule (pin, boost, bury: a later issue) takes the fused list and returns a new
# one; rules run in the given order, after fusion and before diversity and the cut to k.
Rule = Callable[[list[RankedItem]], list[RankedItem]]


def normalise(scores: np.ndarray) -> np.ndarray:
    """Scale one source's scores over the candidate set to [0, 1] by their maximum.

    Negative scores (EASE can produce them) count as 0: a source that dislikes an item adds
    nothing rather than vetoing what another source found. Max-scaling keeps the ratios within
    a source, so a source whose best is far above the rest still says so.
    """
    clipped = np.maximum(np.asarray(scores, dtype=np.float64), 0.0)
    top = float(clipped.max()) if len(clipped) else 0.0
    if top <= 0.0:
        return np.zeros(len(clipped), dtype=np.float64)
    return clipped / top


def blend(
    source_scores: Mapping[str, np.ndarray], weights: Mapping[str, float], *, size: int
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Weighted sum of normalised source scores over ``size`` candidates.

    Returns ``(total, components)`` where ``components[source]`` is the weighted normalised
    score of each candidate (sources with weight 0 or no scores are left out).
    """
    total = np.zeros(size, dtype=np.float64)
    components: dict[str, np.ndarray] = {}
    for source, scores in source_scores.items():
        weight = float(weights.get(source, 0.0))
        if weight <= 0.0 or len(scores) != size:
            continue
        part = weight * normalise(scores)
        if not part.any():
            continue
        components[source] = part
        total += part
    return total, components


def apply_rules(items: list[RankedItem], rules: Sequence[Rule]) -> list[RankedItem]:
    """Run the merchandising rules in order; a rule returns its result and never changes the
    list it was given (the engine extends its head between runs)."""
    for rule in rules:
        items = rule(items)
    return items
