"""The ``sequential`` source: what the sequential model (:mod:`recommender.ml.sequential`)
expects a customer to touch next, as stage 1 candidates and exact stage 2 scores.

The model turns the request's history into a query (one numpy forward pass over at most
``max_len`` products). Its language-model part ``u`` is a query for the same ``ann`` search the
semantic source uses (the serving vector index), so candidates come from a bounded search and
products embedded after the fit are found and scored from their vectors. Fitted candidates are
then scored exactly (the model's embedding of the product, its per-product part included).

The raw score is ``exp(logit - reference)``: the model's softmax, relative to the highest score
a product's vector alone could get, so it is positive and comparable across the candidates of
one request (stage 2 normalises it by its maximum over them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from recommender.ml.sequential import Query, SequentialModel

from .data import AnnSearch, History

if TYPE_CHECKING:
    from .hybrid import HybridEngine
    from .sources import Generation

SOURCE = "sequential"
# Candidates asked of the search per candidate slot. The per-product embeddings reorder what the
# vectors alone rank; asking for twice as many cost more search time per request than it
# changed the list (bench/sequential.py), so the exact scores rerank the search's own number.
OVERFETCH = 1


def sequential_query(engine: HybridEngine, history: History) -> Query | None:
    """The model's query for ``history``, or None (no model, or nothing it can read)."""
    model: SequentialModel | None = engine._sequential
    if model is None or not len(history.product_ids):
        return None
    return model.query(
        product_ids=history.product_ids,
        event_types=history.event_types,
        timestamps=history.timestamps,
        extra_vectors=history.extra_vectors,
    )


def propose(
    gen: Generation, *, size: int, search: AnnSearch
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    query = gen.sequential_query
    unit = None if query is None else query.search_vector()
    if query is None or unit is None:
        return np.empty(0, dtype=np.int64), np.empty(0), []
    pairs = [
        (int(pid), float(cosine))
        for pid, cosine in search(unit, OVERFETCH * size + len(gen.excluded_ids))
        if pid not in gen.excluded_ids
    ]
    # exp(logit - reference) of the vector alone: logit = |u| cos + q.b.
    scores = np.exp(query.norm * (np.array([c for _, c in pairs], dtype=np.float64) - 1.0))
    found = dict(zip((p for p, _ in pairs), scores.tolist(), strict=True))
    return gen._split_found(found, size, key=SOURCE)


def raw(gen: Generation, rows: np.ndarray) -> np.ndarray:
    """Exact scores of fitted engine ``rows``: the model's embedding where the model knows the
    product, its vector through the projection where only the engine does, else 0."""
    engine = gen.engine
    model = engine._sequential
    query = gen.sequential_query
    values = np.zeros(len(rows), dtype=np.float64)
    if model is None or query is None or not len(rows):
        return values
    model_rows = model.rows_of(engine._ids[rows])
    known = model_rows >= 0
    if known.any():
        values[known] = model.logits_of(query, model_rows[known])
    by_vector = ~known & np.asarray(engine._has_vector[rows], dtype=bool)
    if by_vector.any():
        values[by_vector] = model.logits_of_vectors(query, engine._vectors[rows[by_vector]])
    scored = known | by_vector
    values[scored] = np.exp(values[scored] - query.reference)
    return values
