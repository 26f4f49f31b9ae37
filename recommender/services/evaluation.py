"""Offline evaluation: load the catalogue and events into an :class:`EngineData`, run protocols.

The one place the evaluation turns database rows into arrays. It works on whatever is imported
(any dataset in the interchange format, or the Online Retail importer's output).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from recommender.evaluation.cold_tuning import tune_cold_collaborative
from recommender.evaluation.protocols import Report, evaluate_cold_start, evaluate_leave_last_out
from recommender.ml.engine import EngineConfig, EngineData
from recommender.ml.interactions import interactions_from_records
from recommender.models import Event, Product

from .embeddings import embeddings_matrix, get_embedder, product_embeddings_refresh

logger = logging.getLogger(__name__)


def engine_data_load(*, embed_missing: bool = True) -> EngineData:
    """Every product (with its vector of the configured model, if any) and every product event.

    With ``embed_missing`` the products without a current vector are embedded first. Search
    events without a product are left out (the offline protocols rank products).
    """
    embedder = get_embedder()
    if embed_missing:
        product_embeddings_refresh(full=True, embedder=embedder)
    products = list(
        Product.objects.order_by("pk").values_list(
            "pk", "title", "category", "created_at", "is_active"
        )
    )
    item_ids = np.array([p[0] for p in products], dtype=np.int64)
    emb_ids, emb_vectors = embeddings_matrix(model_name=embedder.model_name, active_only=False)
    dim = emb_vectors.shape[1] if len(emb_ids) else embedder.dimension
    vectors = np.zeros((len(item_ids), dim), dtype=np.float32)
    has_vector = np.zeros(len(item_ids), dtype=bool)
    if len(emb_ids):
        pos = np.searchsorted(item_ids, emb_ids)
        vectors[pos] = emb_vectors
        has_vector[pos] = True
    rows = (
        Event.objects.filter(product__isnull=False)
        .values_list(
            "customer_id", "product_id", "event_type", "occurred_at", "quantity", "session_id", "pk"
        )
        .order_by("pk")
    )
    users: list[int] = []
    items: list[int] = []
    types: list[str] = []
    times: list[float] = []
    qty: list[int] = []
    basket_keys: dict[tuple[object, ...], int] = {}
    baskets: list[int] = []
    for customer, product, kind, occurred_at, quantity, session, _ in rows.iterator(
        chunk_size=20_000
    ):
        ts = occurred_at.timestamp()
        users.append(customer)
        items.append(product)
        types.append(kind)
        times.append(ts)
        qty.append(quantity)
        # A session groups a basket; without one, a customer's events at one moment (an invoice
        # line set, a same-day order) do.
        key = ("s", session) if session else ("t", customer, ts)
        baskets.append(basket_keys.setdefault(key, len(basket_keys)))
    interactions = interactions_from_records(
        user_ids=users,
        item_ids=items,
        event_types=types,
        timestamps=times,
        quantities=qty,
        baskets=baskets,
        catalogue_ids=item_ids,
    )
    return EngineData(
        item_ids=item_ids,
        item_vectors=vectors,
        has_vector=has_vector,
        item_titles=[p[1] for p in products],
        item_categories=[p[2] for p in products],
        item_created_at=np.array([p[3].timestamp() for p in products], dtype=np.float64),
        item_active=np.array([p[4] for p in products], dtype=bool),
        interactions=interactions,
    )


def evaluation_run(
    *,
    protocol: str,
    ks: Sequence[int],
    cold_start: bool = False,
    seed: int = 0,
    tune: bool = False,
    config: EngineConfig | None = None,
    embed_missing: bool = True,
    log: Callable[[str], None] = lambda _: None,
) -> list[Report]:
    """Run the leave-last-out protocol (and the cold-start one) on the imported data."""
    if protocol != "leave-last-out":
        raise ValueError(f"protocol: expected 'leave-last-out', got {protocol!r}")
    config = config or EngineConfig()
    data = engine_data_load(embed_missing=embed_missing)
    log(
        f"loaded {len(data.item_ids)} products ({int(data.has_vector.sum())} with vectors), "
        f"{len(data.interactions)} events of {data.interactions.n_users} customers"
    )
    reports = [evaluate_leave_last_out(data, config=config, ks=ks, tune=tune, seed=seed, log=log)]
    if cold_start:
        reports.append(evaluate_cold_start(data, config=config, ks=ks, seed=seed, log=log))
    return reports


def cold_collaborative_tune(
    *,
    config: EngineConfig | None = None,
    seed: int = 0,
    embed_missing: bool = True,
    log: Callable[[str], None] = lambda _: None,
) -> tuple[float, list[dict[str, Any]]]:
    """Choose ``cold_collaborative`` on validation splits of the imported data (see
    :mod:`recommender.evaluation.cold_tuning`): the chosen share and one row per share."""
    data = engine_data_load(embed_missing=embed_missing)
    return tune_cold_collaborative(data, config=config or EngineConfig(), seed=seed, log=log)
