"""Reads behind the catalogue, customer, event and job endpoints.

Querysets are returned unevaluated so that the API can filter and paginate them in the database.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from django.db import connection
from django.db.models import Count, Model, Q, QuerySet
from django.db.models.query import RawQuerySet

from recommender.models import Customer, Event, Product
from recommender.pseudonyms import customer_id_lookups

# Product rows by (pk, updated_at), per process: recommendation lists repeat the same products
# all day, and building model instances (JSON fields, two timestamps) cost more than the query.
_products: dict[tuple[int, object], Product] = {}
_PRODUCTS_MAX = 50_000

M = TypeVar("M", bound=Model)


def products_awaiting_embedding(*, model_name: str) -> QuerySet[Product]:
    """Products a sweep or reindex would embed: flagged stale, or active without a vector of
    ``model_name``."""
    unembedded = Q(is_active=True) & ~Q(embedding__model_name=model_name)
    return Product.objects.filter(Q(embedding_stale=True) | unembedded).distinct()


def products_active(*, ids: Iterable[int]) -> dict[int, Product]:
    """The active products among ``ids``, by pk, read now (a deactivated product is never
    returned).

    One light query of ``(pk, updated_at)``; full rows only for products this process has not
    seen at that ``updated_at`` (``auto_now``, set by every change and by the bulk importers,
    so a changed product is never served stale). Callers must not mutate the instances.
    """
    wanted = [int(pk) for pk in ids]
    if not wanted:
        return {}
    quote = connection.ops.quote_name

    def active_among(count: int) -> str:
        return f"{quote('is_active')} AND {quote('id')} IN ({', '.join(['%s'] * count)})"

    sql = (
        f"SELECT {quote('id')}, {quote('updated_at')} FROM {quote(Product._meta.db_table)} "
        f"WHERE {active_among(len(wanted))}"
    )  # Raw: the ORM's query building cost more than the query (0.5 vs 0.3 ms of CPU).
    with connection.cursor() as cursor:
        cursor.execute(sql, wanted)
        current = cursor.fetchall()
    out: dict[int, Product] = {}
    missing: dict[int, object] = {}
    for pk, updated_at in current:
        product = _products.get((pk, updated_at))
        if product is None:
            missing[pk] = updated_at
        else:
            out[pk] = product
    if missing:
        if len(_products) + len(missing) > _PRODUCTS_MAX:
            _products.clear()
        for product in _rows_where(Product, active_among(len(missing)), list(missing)):
            out[product.pk] = product
            # Keyed by the value the light query read, whatever type the database returns.
            _products[(product.pk, missing[product.pk])] = product
    return out


def product_pks(*, external_ids: Iterable[str]) -> dict[str, int]:
    """Merchant product id -> primary key for those of ``external_ids`` the catalogue has (one
    read of the unique index; raw, like :func:`products_active`, as the serving path uses it)."""
    wanted = sorted(set(external_ids))
    if not wanted:
        return {}
    quote = connection.ops.quote_name
    sql = (
        f"SELECT {quote('external_id')}, {quote('id')} FROM {quote(Product._meta.db_table)} "
        f"WHERE {quote('external_id')} IN ({', '.join(['%s'] * len(wanted))})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, wanted)
        return dict(cursor.fetchall())


def product_list() -> QuerySet[Product]:
    return Product.objects.order_by("external_id")


def product_get(*, external_id: str) -> Product | None:
    return Product.objects.filter(external_id=external_id).first()


def customer_list() -> QuerySet[Customer]:
    return Customer.objects.order_by("external_id")


def customer_get(*, external_id: str) -> Customer | None:
    """The customer with the shop's id ``external_id`` (hashed first with pseudonymous ids).

    A raw query (every served list starts here): the ORM built this one-row query in 0.56 ms of
    CPU, a raw one with the model's converters costs 0.24 ms (Online Retail, PostgreSQL)."""
    sql, params = customer_lookup_sql(external_id)
    return next(iter(Customer._default_manager.raw(sql, params)), None)


def customer_lookup_sql(external_id: str) -> tuple[str, list[str]]:
    """:func:`customer_get`'s statement and parameters: every column of the customer with the
    shop's id ``external_id`` (at most one row), for another selector to read as a subquery."""
    lookups = list(customer_id_lookups(external_id))
    quote = connection.ops.quote_name
    where = (
        f"{quote('external_id')} IN ({', '.join(['%s'] * len(lookups))}) "
        f"ORDER BY {quote('external_id')} LIMIT 1"
    )
    return _select_where(Customer, where), lookups


def _rows_where(model: type[M], where: str, params: list[Any]) -> RawQuerySet[M]:
    """Every column of ``model``'s rows ``WHERE where`` as instances, the model's converters
    applied: a raw query, for the serving path, where the ORM's query building cost more than
    the query itself."""
    return model._default_manager.raw(_select_where(model, where), params)


def _select_where(model: type[Model], where: str) -> str:
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in model._meta.concrete_fields)
    return f"SELECT {columns} FROM {quote(model._meta.db_table)} WHERE {where}"


def customer_event_counts(*, customer: Customer) -> dict[str, int]:
    """Number of events of each type this customer has, e.g. ``{"purchase": 2, "view": 7}``."""
    rows = (
        Event.objects.filter(customer=customer)
        .order_by("event_type")
        .values_list("event_type")
        .annotate(n=Count("id"))
    )
    return dict(rows)


def event_list() -> QuerySet[Event]:
    # Only the external ids of the related rows are shown: joining them avoids one query per
    # event, and `only` keeps long product descriptions out of the result set.
    return Event.objects.select_related("customer", "product").only(
        "event_id",
        "event_type",
        "occurred_at",
        "quantity",
        "value",
        "session_id",
        "search_query",
        "recommendation_id",
        "received_at",
        "customer__external_id",
        "product__external_id",
    )
