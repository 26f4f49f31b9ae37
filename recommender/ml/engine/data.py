"""What the engine is given: the catalogue and behaviour to fit on (:class:`EngineData`), one
customer's events per request (:class:`History`), and the shape of a vector search
(:data:`AnnSearch`). Plain containers with their consistency checks; no model code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from recommender.ml.interactions import Interactions

# ``ann(vector, n)``: the ``n`` nearest products to ``vector`` as ``(product id, cosine)``, best
# first (the serving vector index; offline, the engine's own search).
AnnSearch = Callable[[np.ndarray, int], list[tuple[int, float]]]
# Per query row: (product ids, cosines) as arrays, best first.
Found = list[tuple[np.ndarray, np.ndarray]]


def search_many(search: AnnSearch, vectors: np.ndarray, n: int) -> Found:
    """``search`` for every row of ``vectors`` (the customer's interests): in one call when the
    search offers ``search.many(vectors, n)`` (the serving index: one graph query for all rows
    instead of one per row, with the index's per-query work done once), else row by row."""
    many: Callable[[np.ndarray, int], Found] | None = getattr(search, "many", None)
    if many is not None:
        return many(vectors, n)
    found = []
    for vector in vectors:
        pairs = search(vector, n)
        ids = np.fromiter((pid for pid, _ in pairs), dtype=np.int64, count=len(pairs))
        cosines = np.fromiter((score for _, score in pairs), dtype=np.float64, count=len(pairs))
        found.append((ids, cosines))
    return found


@dataclass
class EngineData:
    """The catalogue (one row per product, aligned arrays) and the behaviour to learn from.

    ``item_ids`` must be strictly increasing (product keys in key order) and
    ``interactions.item_ids`` must equal them.
    """

    item_ids: np.ndarray  # int64 product keys, ascending
    item_vectors: np.ndarray  # (n, d) float32, L2-normalised; zero rows where has_vector is False
    has_vector: np.ndarray  # bool
    item_titles: Sequence[str]
    item_categories: Sequence[str]
    item_created_at: np.ndarray  # float64 seconds
    item_active: np.ndarray  # bool
    interactions: Interactions

    def __post_init__(self) -> None:
        n = len(self.item_ids)
        for name in (
            "has_vector",
            "item_titles",
            "item_categories",
            "item_created_at",
            "item_active",
        ):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name}: expected {n} entries, got {len(getattr(self, name))}")
        if self.item_vectors.ndim != 2 or len(self.item_vectors) != n:
            raise ValueError(
                f"item_vectors: expected shape ({n}, d), got {self.item_vectors.shape}"
            )
        if n > 1 and not bool(np.all(np.diff(np.asarray(self.item_ids, dtype=np.int64)) > 0)):
            raise ValueError("item_ids: must be strictly increasing")
        if not np.array_equal(self.interactions.item_ids, self.item_ids):
            raise ValueError("interactions.item_ids: must equal item_ids, in the same order")


@dataclass(frozen=True)
class NetworkMember:
    """One customer of a customer's network, with their recent events (the social source).

    ``hop``: 1 for a direct edge of the customer, 2 for an edge of a direct one. ``weight``: the
    edge's weight (for two hops the product of both edges'). ``relation``: the type of the
    customer's own edge on the path (``follows``, ``trusts``, ``friend``, ``referred_by``).
    ``display_name`` is empty unless the shop lets reasons name people. ``product_ids``,
    ``event_types`` and ``timestamps`` are parallel, the member's newest events (bounded by the
    caller).
    """

    customer_id: int
    hop: int
    weight: float
    relation: str
    product_ids: Sequence[int] = ()
    event_types: Sequence[str] = ()
    timestamps: Sequence[float] = ()
    display_name: str = ""

    def __post_init__(self) -> None:
        n = len(self.product_ids)
        if len(self.event_types) != n or len(self.timestamps) != n:
            raise ValueError(
                "NetworkMember: product_ids, event_types and timestamps must have equal lengths"
            )
        if self.hop not in (1, 2):
            raise ValueError(f"NetworkMember.hop: expected 1 or 2, got {self.hop!r}")
        if not self.weight >= 0:
            raise ValueError(f"NetworkMember.weight: expected a number >= 0, got {self.weight!r}")


@dataclass
class History:
    """One customer's (or one session's) events, passed with each request.

    ``product_ids``, ``event_types`` and ``timestamps`` are parallel, one entry per event.
    Search events without a product go in ``query_vectors`` (embedded queries, (m, d)) with
    ``query_timestamps`` and optional ``query_texts`` for reasons. ``network``: the customers
    the customer follows or trusts and theirs (:class:`NetworkMember`), for the social source;
    a history without events but with a network is not cold for it. Products the fitted engine
    does not know may appear in ``product_ids``: give their vectors in ``extra_vectors`` (and
    titles in ``extra_titles``) to let them count; otherwise they are ignored.
    """

    product_ids: Sequence[int] = ()
    event_types: Sequence[str] = ()
    timestamps: Sequence[float] = ()
    query_vectors: np.ndarray | None = None
    query_timestamps: Sequence[float] = ()
    query_texts: Sequence[str] = ()
    extra_vectors: Mapping[int, np.ndarray] = field(default_factory=dict)
    extra_titles: Mapping[int, str] = field(default_factory=dict)
    # The customer's network (the social source): bounded by whoever builds the history.
    network: Sequence[NetworkMember] = ()

    def __post_init__(self) -> None:
        n = len(self.product_ids)
        if len(self.event_types) != n or len(self.timestamps) != n:
            raise ValueError(
                "History: product_ids, event_types and timestamps must have equal lengths "
                f"(got {n}, {len(self.event_types)}, {len(self.timestamps)})"
            )
        m = 0 if self.query_vectors is None else len(self.query_vectors)
        if len(self.query_timestamps) != m:
            raise ValueError(f"History.query_timestamps: expected {m} entries")
        if self.query_texts and len(self.query_texts) != m:
            raise ValueError(f"History.query_texts: expected {m} entries or none")

    @property
    def is_empty(self) -> bool:
        return not len(self.product_ids) and (
            self.query_vectors is None or not len(self.query_vectors)
        )


def customer_sample(data: EngineData, size: int, *, seed: int = 0) -> EngineData:
    """``data`` with the events of at most ``size`` customers (a seeded draw), every product
    kept: what a fit learns its settings on, so that cost stays bounded on a large shop."""
    inter = data.interactions
    users = np.unique(inter.user_idx)
    if len(users) <= size:
        return data
    chosen = np.random.default_rng(seed).choice(users, size=size, replace=False)
    return replace(data, interactions=inter.subset(np.isin(inter.user_idx, chosen)))
