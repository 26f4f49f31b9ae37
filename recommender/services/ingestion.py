"""Writes of ingested products, customers and events. Every write here is idempotent.

Products and customers are upserted by the merchant's id; events are inserted once per
``event_id``. Callers (the batch API, the file importers) parse rows with
``recommender.ingestion.records`` first, so these functions receive only valid records.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TypeVar

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from recommender.ingestion.records import (
    AttributePolicy,
    CustomerRecord,
    EventRecord,
    FieldError,
    ProductRecord,
    derived_event_id,
)
from recommender.models import Customer, Event, Product
from recommender.pseudonyms import customer_id_stored, pseudonymous_ids
from recommender.signals import customer_forgotten

from .activity import (
    StatRow,
    events_lock_exclusive,
    events_lock_shared,
    stats_add,
    stats_add_postgres,
    stats_remove_customer,
    stats_remove_product_events,
)

# Rows per statement: large enough to amortise round trips, small enough for SQLite's limits.
_CHUNK = 2000
_PRODUCT_FIELDS = (
    "title", "description", "category", "brand", "price", "tags", "attributes", "is_active",
)  # fmt: skip
# Fields that feed the embedding text: changing one flags the product for the embedding sweep.
_EMBEDDED_FIELDS = ("title", "description", "category", "brand", "tags")


@dataclass(slots=True)
class UpsertCounts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0

    def add(self, other: UpsertCounts) -> None:
        self.created += other.created
        self.updated += other.updated
        self.unchanged += other.unchanged


@dataclass(slots=True)
class EventInsertCounts:
    created: int = 0
    duplicates: int = 0
    customers_created: int = 0

    def add(self, other: EventInsertCounts) -> None:
        self.created += other.created
        self.duplicates += other.duplicates
        self.customers_created += other.customers_created


T = TypeVar("T")
R = TypeVar("R", ProductRecord, CustomerRecord)


def _chunks(items: Sequence[T], size: int = _CHUNK) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _last_wins(records: Iterable[R]) -> list[R]:
    """Within one batch a later row for the same id replaces an earlier one, as in a file."""
    return list({r.external_id: r for r in records}.values())


@transaction.atomic
def products_upsert(*, records: Sequence[ProductRecord]) -> UpsertCounts:
    """Create new products, update changed ones, leave identical ones untouched."""
    counts = UpsertCounts()
    for chunk in _chunks(_last_wins(records)):
        existing = Product.objects.in_bulk([r.external_id for r in chunk], field_name="external_id")
        to_create: list[Product] = []
        to_update: list[Product] = []
        for record in chunk:
            values = {name: getattr(record, name) for name in _PRODUCT_FIELDS}
            product = existing.get(record.external_id)
            if product is None:
                to_create.append(Product(external_id=record.external_id, **values))
                continue
            if all(getattr(product, name) == value for name, value in values.items()):
                counts.unchanged += 1
                continue
            if any(getattr(product, name) != values[name] for name in _EMBEDDED_FIELDS):
                product.embedding_stale = True
            for name, value in values.items():
                setattr(product, name, value)
            product.updated_at = timezone.now()
            to_update.append(product)
        # A product created meanwhile by a concurrent batch is updated, not a unique-key error
        # (counted as created: the race is rare and the values are this batch's either way).
        Product.objects.bulk_create(
            to_create,
            update_conflicts=True,
            unique_fields=["external_id"],
            update_fields=[*_PRODUCT_FIELDS, "embedding_stale", "updated_at"],
        )
        Product.objects.bulk_update(to_update, [*_PRODUCT_FIELDS, "embedding_stale", "updated_at"])
        counts.created += len(to_create)
        counts.updated += len(to_update)
    return counts


def customer_attribute_policy() -> AttributePolicy:
    """The customer attribute allow-list of the settings (docs/privacy.md)."""
    names = settings.RECSITE_CUSTOMER_ATTRIBUTES
    return AttributePolicy(
        names=frozenset(names) if names else None,
        allow_contact=settings.RECSITE_CUSTOMER_CONTACT_ATTRIBUTES,
    )


@transaction.atomic
def customers_upsert(*, records: Sequence[CustomerRecord]) -> UpsertCounts:
    """Create new customers; replace the attributes of known ones when they differ."""
    counts = UpsertCounts()
    if pseudonymous_ids():  # Stored under their pseudonyms (recommender.pseudonyms).
        records = [replace(r, external_id=customer_id_stored(r.external_id)) for r in records]
    for chunk in _chunks(_last_wins(records)):
        existing = Customer.objects.in_bulk(
            [r.external_id for r in chunk], field_name="external_id"
        )
        to_create: list[Customer] = []
        to_update: list[Customer] = []
        for record in chunk:
            customer = existing.get(record.external_id)
            if customer is None:
                to_create.append(
                    Customer(external_id=record.external_id, attributes=record.attributes)
                )
            elif customer.attributes != record.attributes:
                customer.attributes = record.attributes
                customer.updated_at = timezone.now()
                to_update.append(customer)
            else:
                counts.unchanged += 1
        # Events create customers too: one created meanwhile by a concurrent events batch is
        # updated, not a unique-key error (and counted as created).
        Customer.objects.bulk_create(
            to_create,
            update_conflicts=True,
            unique_fields=["external_id"],
            update_fields=["attributes", "updated_at"],
        )
        Customer.objects.bulk_update(to_update, ["attributes", "updated_at"])
        counts.created += len(to_create)
        counts.updated += len(to_update)
    return counts


# Advanced by every statement that deletes products (a trigger; PostgreSQL): see ProductPkMap.
_PRODUCT_DELETIONS = "recsite_product_deletions"


class ProductPkMap(dict[str, int]):
    """Merchant product id → primary key, with the product deletions counter as it stood when
    the map was read (``deletions``; None where there is none: other databases).

    An insert must not name a product deleted since its caller's lookup (the events table has
    no foreign-key constraint). Probing every product of a chunk cost a quarter of a large
    import's writing thread; with the counter unchanged since the lookup, one query shows that
    nothing was deleted, and only when it moved are the products probed
    (:func:`_products_deleted`). Removing entries (an import dropping deleted products) leaves
    the counter as read, so later inserts keep probing: correct, only slower.
    """

    deletions: tuple[int, bool] | None = None


def _sequence_state(name: str) -> tuple[int, bool]:
    """Where PostgreSQL sequence ``name`` stands: it moved exactly when this changed."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT last_value, is_called FROM {name}")
        last_value, is_called = cursor.fetchone()
    return int(last_value), bool(is_called)


def _product_deletions() -> tuple[int, bool] | None:
    """The deletions counter now (PostgreSQL), None elsewhere."""
    return _sequence_state(_PRODUCT_DELETIONS) if connection.vendor == "postgresql" else None


def product_pk_map(*, external_ids: Iterable[str] | None = None) -> ProductPkMap:
    """Merchant product id → primary key, for the given ids or for the whole catalogue."""
    queryset = Product.objects.all()
    if external_ids is not None:
        queryset = queryset.filter(external_id__in=set(external_ids))
    return ProductPkMap(queryset.values_list("external_id", "pk"))


def product_pk_map_for_events(*, external_ids: Iterable[str] | None = None) -> ProductPkMap:
    """:func:`product_pk_map` for an insert of events (:func:`events_insert`): with the
    deletions counter read with it, so the insert can skip probing its products while no product
    has been deleted since (PostgreSQL)."""
    with transaction.atomic():
        # Under the events lock no product_delete is half done: a deletion either committed
        # before the counter was read (the map lacks its product) or moves the counter later.
        events_lock_shared()
        deletions = _product_deletions()
        found = product_pk_map(external_ids=external_ids)
    found.deletions = deletions
    return found


def events_unknown_products(
    *, records: Sequence[EventRecord], product_map: Mapping[str, int]
) -> list[tuple[int, FieldError]]:
    """(index, error) for each event that names a product the catalogue does not have."""
    return [
        (index, FieldError("product_id", f"unknown product {record.product_id!r}", rule=True))
        for index, record in enumerate(records)
        if record.product_id is not None and record.product_id not in product_map
    ]


def customer_pk_map_ensure(*, external_ids: Iterable[str]) -> tuple[dict[str, int], int]:
    """Primary keys for these customer ids, creating the unknown ones. Returns (map, created),
    the map keyed by the ids given (the shop's, also when they are stored as pseudonyms)."""
    if pseudonymous_ids():
        stored = {e: customer_id_stored(e) for e in set(external_ids)}
        found, created = _customer_pk_map_ensure(stored.values())
        return {e: found[s] for e, s in stored.items() if s in found}, created
    return _customer_pk_map_ensure(external_ids)


def _customer_pk_map_ensure(external_ids: Iterable[str]) -> tuple[dict[str, int], int]:
    wanted = set(external_ids)
    found: dict[str, int] = {}
    for chunk in _chunks(sorted(wanted)):
        found.update(
            Customer.objects.filter(external_id__in=chunk).values_list("external_id", "pk")
        )
    missing = sorted(wanted - found.keys())
    for chunk in _chunks(missing):
        # ignore_conflicts: a concurrent request may create the same customer first.
        Customer.objects.bulk_create(
            [Customer(external_id=external_id) for external_id in chunk], ignore_conflicts=True
        )
        found.update(
            Customer.objects.filter(external_id__in=chunk).values_list("external_id", "pk")
        )
    return found, len(missing)


class CustomerIds:
    """Merchant customer id → primary key, remembered across the chunks of one import.

    Resolving the customers of a 20,000-event chunk in the database cost as much as inserting
    the events; a dict lookup costs nothing. A remembered key could only go stale when its
    customer is forgotten (``customer_forget``), which advances the ``recsite_customer_forgets``
    sequence while it holds the events lock exclusively: every chunk, holding that lock shared,
    reads the sequence first and starts afresh when it moved. PostgreSQL only (elsewhere each
    call resolves its customers anew). Bounded: past ``limit`` entries it starts afresh too.
    """

    def __init__(self, *, limit: int = 2_000_000) -> None:
        self.limit = limit
        self._map: dict[str, int] = {}
        self._generation: tuple[int, bool] | None = None

    def resolve(self, external_ids: Iterable[str], *, now: datetime) -> tuple[dict[str, int], int]:
        """Primary keys of these customers, creating unknown ones; (map, created), keyed by the
        ids given. Call inside the inserting transaction, after :func:`events_lock_shared`."""
        if pseudonymous_ids():  # Remembered under their pseudonyms; answered by the shop's ids.
            stored = {e: customer_id_stored(e) for e in set(external_ids)}
            known, created = self._resolve(stored.values(), now=now)
            return {e: known[s] for e, s in stored.items()}, created
        return self._resolve(external_ids, now=now)

    def create(self, records: Sequence[EventRecord]) -> int:
        """Create the customers that ``records`` would create (those of the first occurrence
        of each event id) in a transaction of its own, committed, and remember every key; the
        number created.

        For an import on several connections: a customer that one connection has created and
        not yet committed blocks every other connection that names it until that commit, so
        each writer creates a chunk's customers first, then inserts its events in a second
        transaction, whose :meth:`resolve` then finds them all known and locks none. A chunk
        whose events then fail leaves its new customers behind, without events (the import
        can be run again). A customer forgotten between the two transactions moves the forgets
        sequence, and the second one resolves (and recreates) it under the events lock.
        """
        if pseudonymous_ids():
            _derived_event_ids_pseudonymous(records)
        with transaction.atomic():
            events_lock_shared()
            _, created = self.resolve(
                (r.customer_id for r in first_occurrences(records)), now=timezone.now()
            )
        return created

    def _resolve(self, external_ids: Iterable[str], *, now: datetime) -> tuple[dict[str, int], int]:
        generation = _sequence_state("recsite_customer_forgets")
        with connection.cursor() as cursor:
            if generation != self._generation or len(self._map) > self.limit:
                self._map = {}
                self._generation = generation
            known = self._map
            missing = sorted({e for e in external_ids if e not in known})
            created = 0
            table = Customer._meta.db_table
            if missing:
                # Insert first: on a first import most customers are new, and a known one costs
                # one index probe either way. In id order, so that concurrent writers lock new
                # customers in the same order.
                cursor.execute(
                    f"INSERT INTO {table} (external_id, attributes, created_at, updated_at) "
                    f"SELECT e, '{{}}'::jsonb, %s, %s FROM unnest(%s::text[]) AS e ORDER BY 1 "
                    f"ON CONFLICT (external_id) DO NOTHING RETURNING external_id, id",
                    [now, now, missing],
                )
                rows = cursor.fetchall()
                created = len(rows)
                known.update(rows)
            if created < len(missing):  # Customers that existed already.
                cursor.execute(
                    f"SELECT external_id, id FROM {table} WHERE external_id = ANY(%s)",
                    [[e for e in missing if e not in known]],
                )
                known.update(cursor.fetchall())
        return known, created


class ProductsDeleted(Exception):
    """Products of ``product_map`` deleted between the caller's lookup and the insert."""

    def __init__(self, external_ids: list[str]) -> None:
        super().__init__(", ".join(external_ids))
        self.external_ids = external_ids


def _products_deleted(records: Sequence[EventRecord], product_map: Mapping[str, int]) -> list[str]:
    """The merchant ids of products of ``records`` deleted since ``product_map`` was read: none
    without a query per product while the deletions counter has not moved since then (called
    under the events lock, so a deletion in progress has committed)."""
    read_at = getattr(product_map, "deletions", None)
    if read_at is not None and _product_deletions() == read_at:
        return []
    used = {product_map[r.product_id] for r in records if r.product_id is not None}
    if not used:
        return []
    if connection.vendor == "postgresql":
        # One array parameter, answering only the missing keys. The ORM's IN-lists (a bound
        # parameter per product, a query per 900) took 125 ms of a 20,000-event chunk with
        # 9,263 products (60 ms of Python), this 22 ms (6 ms); at 50,000 events/s a chunk has
        # 400 ms in all.
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT u FROM unnest(%s::bigint[]) AS u WHERE NOT EXISTS "
                f"(SELECT 1 FROM {Product._meta.db_table} p WHERE p.id = u)",
                # As an array literal: psycopg adapts a list item by item (6 ms of CPU for
                # 9,263 keys against 1 ms for the text).
                ["{" + ",".join(map(str, used)) + "}"],
            )
            gone = {row[0] for row in cursor.fetchall()}
    else:
        found: set[int] = set()
        for chunk in _chunks(sorted(used), 900):  # SQLite's limit on bound variables.
            found.update(Product.objects.filter(pk__in=chunk).values_list("pk", flat=True))
        gone = used - found
    if not gone:
        return []
    return sorted(external_id for external_id, pk in product_map.items() if pk in gone)


@transaction.atomic
def events_insert(
    *,
    records: Sequence[EventRecord],
    product_map: Mapping[str, int],
    customer_ids: CustomerIds | None = None,
) -> EventInsertCounts:
    """Insert events whose ``event_id`` is new; known ids (replays) are counted as duplicates.

    Every product must be in ``product_map`` (check with :func:`events_unknown_products`);
    :class:`ProductsDeleted` (nothing inserted) names those deleted since it was read.
    Customers are created on first sight (``customer_ids`` remembers their keys between the
    calls of one import). Runs in one transaction: all or nothing. The event aggregates
    (``recommender.models.activity``) count the inserted events in the same transaction.
    """
    if pseudonymous_ids():
        _derived_event_ids_pseudonymous(records)
    unique = first_occurrences(records)
    counts = EventInsertCounts(duplicates=len(records) - len(unique))
    # Held until commit: a customer forgotten or a product deleted concurrently cannot lose its
    # row under an insert that names it (the events table has no foreign-key constraint).
    events_lock_shared()
    # The caller looked the products up before this lock; one deleted since then would be
    # named by events that nothing deletes. One indexed query per call.
    deleted = _products_deleted(unique, product_map)
    if deleted:
        raise ProductsDeleted(deleted)
    received_at = timezone.now()
    if connection.vendor == "postgresql":
        customer_map, counts.customers_created = (customer_ids or CustomerIds()).resolve(
            (r.customer_id for r in unique), now=received_at
        )
        for chunk in _chunks(unique, 20_000):
            created = _insert_postgres(chunk, product_map, customer_map, received_at)
            counts.created += created
            counts.duplicates += len(chunk) - created
        return counts
    customer_map, counts.customers_created = customer_pk_map_ensure(
        external_ids=(r.customer_id for r in unique)
    )
    for chunk in _chunks(unique):
        created = _insert_portable(chunk, product_map, customer_map, received_at)
        counts.created += created
        counts.duplicates += len(chunk) - created
    return counts


def first_occurrences(records: Sequence[EventRecord]) -> list[EventRecord]:
    """The first record of each ``event_id`` (the one an insert keeps)."""
    return list({r.event_id: r for r in reversed(records)}.values())


_COLUMNS = (
    "event_id", "customer_id", "product_id", "event_type", "occurred_at", "quantity", "value",
    "session_id", "search_query", "recommendation_id", "received_at",
)  # fmt: skip


def _insert_portable(
    chunk: Sequence[EventRecord],
    product_map: Mapping[str, int],
    customer_map: Mapping[str, int],
    received_at: datetime,
) -> int:
    known = set(
        Event.objects.filter(event_id__in=[r.event_id for r in chunk]).values_list(
            "event_id", flat=True
        )
    )
    new = [
        Event(
            event_id=r.event_id,
            customer_id=customer_map[r.customer_id],
            product_id=product_map[r.product_id] if r.product_id is not None else None,
            event_type=r.event_type,
            occurred_at=r.occurred_at,
            quantity=r.quantity,
            value=r.value,
            session_id=r.session_id,
            search_query=r.search_query,
            recommendation_id=r.recommendation_id or None,
            received_at=received_at,
        )
        for r in chunk
        if r.event_id not in known
    ]
    # Writers are serialised by the database (SQLite), so every new event is inserted.
    Event.objects.bulk_create(new)
    stats_add(rows=(StatRow(e.customer_id, e.product_id, e.event_type, e.occurred_at) for e in new))
    return len(new)


# COPY text format: backslash, tab, newline and carriage return are escaped; \\N is NULL.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_COPY_NULL = "\\N"
_STAGE = "recsite_event_stage"
# The rows the last INSERT really inserted, for the aggregates.
_INSERTED = "recsite_event_inserted"


def _derived_event_ids_pseudonymous(records: Sequence[EventRecord]) -> None:
    """With pseudonymous ids, an event sent without an id gets one derived from the customer's
    pseudonym, not the shop's id: a hash of the shop's id and the row's other values could be
    matched against a dump by trying every id."""
    for r in records:
        if r.event_id.startswith("auto-") and r.event_id == derived_event_id(r):
            r.event_id = derived_event_id(replace(r, customer_id=customer_id_stored(r.customer_id)))
            r.copy_tail = ""  # Prepared with the former id.


def copy_tail(r: EventRecord, product_pk: int | None) -> str:
    """The COPY line of an event after its customer key (which only the writer knows).

    One f-string per row: about twice as fast as escaping every value generically. Numbers and
    timestamps never need escaping; only free text goes through the translation table. A bulk
    import computes it in its reader thread (:func:`copy_tails_prepare`), in parallel with the
    database's work on the previous chunk.
    """
    return (
        f"{r.event_id.translate(_COPY_ESCAPES)}\t"
        f"{_COPY_NULL if product_pk is None else product_pk}\t"
        f"{r.event_type.translate(_COPY_ESCAPES)}\t{r.occurred_at.isoformat()}\t{r.quantity}\t"
        f"{_COPY_NULL if r.value is None else r.value}\t"
        f"{r.session_id.translate(_COPY_ESCAPES)}\t{r.search_query.translate(_COPY_ESCAPES)}\t"
        # A UUID in canonical form needs no escaping.
        f"{r.recommendation_id or _COPY_NULL}\n"
    )


def copy_tails_prepare(records: Sequence[EventRecord], product_map: Mapping[str, int]) -> None:
    """Prepare the COPY lines of these events ahead of :func:`events_insert` (PostgreSQL only;
    events naming an unknown product are left alone: they are rejected anyway)."""
    if connection.vendor != "postgresql":
        return
    for r in records:
        if r.product_id is None:
            r.copy_tail = copy_tail(r, None)
        else:
            pk = product_map.get(r.product_id)
            if pk is not None:
                r.copy_tail = copy_tail(r, pk)


def _insert_postgres(
    chunk: Sequence[EventRecord],
    product_map: Mapping[str, int],
    customer_map: Mapping[str, int],
    received_at: datetime,
) -> int:
    """COPY into a temporary table, then one INSERT … ON CONFLICT DO NOTHING that keeps the
    inserted rows for the aggregates. Returns the number of events created.

    About ten times faster than row-wise INSERTs; the rowcount is exactly the number of new
    events, so duplicates are counted without a second query.
    """
    table = Event._meta.db_table
    data = "".join(
        [
            f"{customer_map[r.customer_id]}\t"
            + (
                r.copy_tail
                or copy_tail(r, product_map[r.product_id] if r.product_id is not None else None)
            )
            for r in chunk
        ]
    )
    columns = ", ".join(_COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGE} (customer_id bigint, event_id text, "
            f"product_id bigint, event_type text, occurred_at timestamptz, quantity integer, "
            f"value numeric(14, 2), session_id text, search_query text, recommendation_id uuid) "
            f"ON COMMIT DELETE ROWS"
        )
        cursor.execute(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {_INSERTED} (customer_id bigint, "
            f"product_id bigint, event_type text, occurred_at timestamptz) ON COMMIT DELETE ROWS"
        )
        with cursor.cursor.copy(f"COPY {_STAGE} FROM STDIN") as copy:
            copy.write(data)
        staged = ", ".join(_COLUMNS[:-1])  # All but received_at, which is the same for all.
        cursor.execute(
            f"WITH ins AS (INSERT INTO {table} ({columns}) "
            f"SELECT {staged}, %s::timestamptz FROM {_STAGE} "
            f"ON CONFLICT (event_id) DO NOTHING "
            f"RETURNING customer_id, product_id, event_type, occurred_at) "
            f"INSERT INTO {_INSERTED} SELECT * FROM ins",
            [received_at],
        )
        created = cursor.rowcount
        if created:
            stats_add_postgres(inserted_table=_INSERTED)
        cursor.execute(f"TRUNCATE {_STAGE}, {_INSERTED}")
    return created


@transaction.atomic
def customer_forget(*, customer: Customer) -> int:
    """Right to be forgotten: delete the customer and every event of theirs.

    Returns the number of events removed. The event aggregates forget them too: no count of
    the dashboard keeps them, not even anonymously.
    """
    # Exclusive: no insert may name this customer until the deletion commits; after it, a new
    # event for the same id creates a new customer.
    events_lock_exclusive()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:  # Imports forget the customer keys they remember.
            cursor.execute("SELECT nextval('recsite_customer_forgets')")
    stats_remove_customer(customer_id=customer.pk)
    events_deleted, _ = Event.objects.filter(customer=customer).delete()
    customer_pk, external_id = customer.pk, customer.external_id
    customer.delete()
    # Apps built on recommender (privacy: the tombstone and the purge of derived artifacts).
    customer_forgotten.send(
        sender=Customer,
        customer_pk=customer_pk,
        external_id=external_id,
        events_deleted=events_deleted,
    )
    return events_deleted


@transaction.atomic
def product_delete(*, product: Product) -> int:
    """Delete a product and every event about it; returns the number of events removed.

    Its events go with it: an event names a product that must exist (the events table has no
    foreign-key constraint, so nothing else would stop one pointing at nothing), and a test
    product's events are test data too. The aggregates forget them (the dashboard's counts,
    the customers' activity, the product's own counts); the embedding and the product's tags
    go through their foreign keys. Merchandising rules keep naming the merchant's id (a product
    sent again later is the same product to them) and simply match nothing meanwhile.

    Every list drops the product at once (lists are filtered by the products that exist and
    are active); the engine and the vector index forget it at their next build, which the
    nightly refresh plans for deleted events and indexed products that are gone. The events
    table has no product index (it halved the import rate), so the deletion reads the table
    once; ingestion waits meanwhile, as for forgetting a customer.
    """
    # Exclusive: no insert may name the product until the deletion commits.
    events_lock_exclusive()
    events = Event.objects.filter(product_id=product.pk)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:  # One pass over the table, returning what it took.
            cursor.execute(
                f"DELETE FROM {Event._meta.db_table} WHERE product_id = %s "
                f"RETURNING customer_id, event_type, occurred_at",
                [product.pk],
            )
            rows = cursor.fetchall()
    else:
        rows = list(events.order_by().values_list("customer_id", "event_type", "occurred_at"))
        events.delete()
    stats_remove_product_events(product_id=product.pk, rows=rows)
    product.delete()
    return len(rows)
