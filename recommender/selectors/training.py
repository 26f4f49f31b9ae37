"""Reads behind a fit: the catalogue and every product event as numpy columns, streamed.

A fit reads the whole shop, so it must not build one Python object per event: at 50 million
events that alone would need tens of gigabytes. Events arrive in chunks and go straight into
preallocated columns (about 30 bytes an event). On PostgreSQL the database encodes each row as a
fixed-size binary record (``COPY ... TO STDOUT (FORMAT binary)``) that numpy decodes a chunk at
a time without any per-row Python; other databases go through the ORM in chunks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db import connection

from recommender.models import Event, Product, ProductEmbedding

from .binary_copy import copy_columns

# The type name of events whose type is no longer among RECSITE_EVENT_TYPES: kept (so the event
# counts stay exact) but with no behaviour weight unless a configuration names it.
OTHER_TYPE = "other"
_CHUNK_ROWS = 200_000  # Rows per chunk of the ORM path.


@dataclass(frozen=True)
class EventColumns:
    """One entry per product event, ordered by the event's primary key."""

    customer: np.ndarray  # int64 customer keys
    product: np.ndarray  # int64 product keys
    code: np.ndarray  # int8 index into ``event_types``
    timestamp: np.ndarray  # float64 epoch seconds
    quantity: np.ndarray  # float32
    basket: np.ndarray  # int64 key shared by the events of one basket (session or moment)
    event_types: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.customer)

    @property
    def nbytes(self) -> int:
        return sum(
            getattr(self, name).nbytes
            for name in ("customer", "product", "code", "timestamp", "quantity", "basket")
        )


@dataclass(frozen=True)
class CatalogueColumns:
    """One entry per product, ordered by primary key."""

    ids: np.ndarray  # int64
    titles: list[str]
    categories: list[str]
    created_at: np.ndarray  # float64 epoch seconds
    active: np.ndarray  # bool


def event_types_known() -> tuple[str, ...]:
    """The event types a fit distinguishes: the accepted ones, then ``OTHER_TYPE``."""
    return (*dict.fromkeys(settings.RECSITE_EVENT_TYPES), OTHER_TYPE)


def product_event_count(*, exact: bool = False) -> int:
    """How many product events there are: on PostgreSQL the planner's estimate unless
    ``exact`` (a count of 50M rows takes seconds; a memory estimate needs no more)."""
    if connection.vendor == "postgresql" and not exact:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                [Event._meta.db_table],
            )
            row = cursor.fetchone()
        estimate = int(row[0]) if row else -1
        if estimate >= 0:
            return estimate
    return Event.objects.filter(product__isnull=False).count()


def catalogue_columns() -> CatalogueColumns:
    """Every product (active or not), by primary key, in chunks."""
    count = Product.objects.count()
    ids = np.empty(count, dtype=np.int64)
    created = np.empty(count, dtype=np.float64)
    active = np.empty(count, dtype=bool)
    titles: list[str] = []
    categories: list[str] = []
    rows = Product.objects.order_by("pk").values_list(
        "pk", "title", "category", "created_at", "is_active"
    )
    n = 0
    for pk, title, category, created_at, is_active in rows.iterator(chunk_size=20_000):
        if n == count:  # Products added while reading: the next fit has them.
            break
        ids[n] = pk
        created[n] = created_at.timestamp()
        active[n] = is_active
        titles.append(title)
        categories.append(category)
        n += 1
    return CatalogueColumns(
        ids=ids[:n], titles=titles, categories=categories, created_at=created[:n], active=active[:n]
    )


def event_columns(*, progress: Callable[[float], None] | None = None) -> EventColumns:
    """Every event with a product, as columns (see the module notes)."""
    types = event_types_known()
    expected = product_event_count()
    postgres = connection.vendor == "postgresql"
    chunks = _postgres_chunks(types) if postgres else _orm_chunks(types)
    return _collect(chunks, types=types, expected=expected, progress=progress)


# The event columns a fit reads, as the binary COPY sends them (big-endian) and as numpy keeps
# them. The event's id comes too: rows arrive in the table's physical order (no ORDER BY, which
# would make PostgreSQL walk the primary key), and are put in id order here when they are not.
_FIELDS = (
    ("id", ">i8", np.int64),
    ("customer", ">i8", np.int64),
    ("product", ">i8", np.int64),
    ("code", ">i2", np.int8),
    ("timestamp", ">f8", np.float64),
    ("quantity", ">i4", np.float32),
    ("basket", ">i8", np.int64),
)


def _postgres_chunks(types: Sequence[str]) -> Iterator[dict[str, np.ndarray]]:
    quote = connection.ops.quote_name
    table = quote(Event._meta.db_table)
    type_list = ", ".join("%s" for _ in types[:-1])
    # A basket is a session; without one, a customer's events at one moment (an invoice's lines,
    # a same-day order) form one. Both keys are 64-bit hashes: a collision between two baskets
    # would merge them, at odds of about 1 in 10^10 for a million baskets.
    query = (
        "SELECT id::int8, customer_id::int8, product_id::int8, "
        f"COALESCE(array_position(ARRAY[{type_list}]::text[], event_type::text) - 1, "
        f"{len(types) - 1})::int2, "
        "EXTRACT(EPOCH FROM occurred_at)::float8, quantity::int4, "
        "CASE WHEN session_id <> '' THEN hashtextextended('s' || session_id, 0) "
        "ELSE hashtextextended(customer_id::text || '@' || "
        "EXTRACT(EPOCH FROM occurred_at)::text, 0) END "
        f"FROM {table} WHERE product_id IS NOT NULL"
    )
    yield from copy_columns(query, list(types[:-1]), _FIELDS, block_bytes=8 << 20)


def _orm_chunks(types: Sequence[str]) -> Iterator[dict[str, np.ndarray]]:
    code_of = {name: i for i, name in enumerate(types)}
    other = len(types) - 1
    rows = (
        Event.objects.filter(product__isnull=False)
        .order_by("pk")
        .values_list(
            "pk",
            "customer_id",
            "product_id",
            "event_type",
            "occurred_at",
            "quantity",
            "session_id",
        )
    )
    basket_keys: dict[tuple[object, ...], int] = {}
    batch: list[tuple[int, int, int, int, float, int, int]] = []
    for pk, customer, product, kind, occurred_at, quantity, session in rows.iterator(
        chunk_size=20_000
    ):
        stamp = occurred_at.timestamp()
        key = ("s", session) if session else ("t", customer, stamp)
        basket = basket_keys.setdefault(key, len(basket_keys))
        batch.append((pk, customer, product, code_of.get(kind, other), stamp, quantity, basket))
        if len(batch) == _CHUNK_ROWS:
            yield _columns(batch)
            batch = []
    if batch:
        yield _columns(batch)


def _columns(batch: list[tuple[int, int, int, int, float, int, int]]) -> dict[str, np.ndarray]:
    columns = zip(*batch, strict=True)
    return {name: np.array(values, dtype=dtype) for (name, _, dtype), values in
            zip(_FIELDS, columns, strict=True)}  # fmt: skip


def _collect(
    chunks: Iterator[dict[str, np.ndarray]],
    *,
    types: tuple[str, ...],
    expected: int,
    progress: Callable[[float], None] | None,
) -> EventColumns:
    """Chunks into columns preallocated for ``expected`` rows (grown by half when short)."""
    capacity = max(expected, 1)
    columns: dict[str, np.ndarray] = {
        name: np.empty(capacity, dtype=dtype) for name, _, dtype in _FIELDS
    }
    n = 0
    for chunk in chunks:
        size = len(chunk["customer"])
        if n + size > capacity:
            capacity = max(n + size, capacity + capacity // 2)
            for name in columns:
                grown = np.empty(capacity, dtype=columns[name].dtype)
                grown[:n] = columns[name][:n]
                columns[name] = grown
        for name, values in chunk.items():
            columns[name][n : n + size] = values
        n += size
        if progress and expected:
            progress(min(n / expected, 1.0))
    # The spare room the estimate left is handed back in place (``realloc``: a large block
    # shrinks without a copy), never by copying every column beside itself.
    for values in columns.values():
        if n < len(values):
            values.resize(n, refcheck=False)
    ids: np.ndarray = columns.pop("id")
    if n > 1 and not bool(np.all(ids[1:] > ids[:-1])):
        # Physical order differs from id order (rows moved by updates or vacuum): id order,
        # which the evaluation's ties follow, costs one sort, applied a column at a time.
        order = np.argsort(ids, kind="stable")
        for name in columns:
            columns[name] = columns[name][order]
    return EventColumns(**columns, event_types=types)


def embedding_matrix(
    *, ids: np.ndarray, model_name: str, dimension: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(vectors, has_vector)`` aligned with ``ids`` (ascending product keys): the stored
    vectors of ``model_name`` with ``dimension`` values, zero rows for products without one.
    Streamed into one preallocated float32 matrix (no list of a million byte strings)."""
    vectors = np.zeros((len(ids), dimension), dtype=np.float32)
    has_vector = np.zeros(len(ids), dtype=bool)
    if not len(ids) or dimension <= 0:
        return vectors, has_vector
    width = 4 * dimension
    rows = (
        ProductEmbedding.objects.filter(model_name=model_name, dimension=dimension)
        .order_by("product_id")
        .values_list("product_id", "vector")
    )
    keys: list[int] = []
    blobs: list[bytes] = []

    def flush() -> None:
        if not keys:
            return
        found = np.asarray(keys, dtype=np.int64)
        at = np.minimum(np.searchsorted(ids, found), len(ids) - 1)
        hit = ids[at] == found
        block = np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(keys), dimension)
        vectors[at[hit]] = block[hit]
        has_vector[at[hit]] = True
        keys.clear()
        blobs.clear()

    for product_id, vector in rows.iterator(chunk_size=10_000):
        data = bytes(vector)
        if len(data) != width:
            continue  # A vector of another size cannot be this model's: skip it.
        keys.append(product_id)
        blobs.append(data)
        if len(keys) == 10_000:
            flush()
    flush()
    return vectors, has_vector
