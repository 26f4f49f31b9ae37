"""Reads: events as arrays for the model, scores, score history, builds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from django.db import connection
from django.db.models import Count, Max, Min, QuerySet

from churn.ml.features import CART, OTHER, PURCHASE, VIEW, EventLog
from churn.models import ChurnModelBuild, ChurnScore, RiskBand
from jobs.selectors import build_latest_ready
from recommender.models import Customer, Event, Product, ProductEmbedding
from recommender.selectors.binary_copy import copy_columns

_KINDS = {"purchase": PURCHASE, "view": VIEW, "click": VIEW, "add_to_cart": CART}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_days(moment: datetime) -> float:
    """Days since the Unix epoch, the time unit of :mod:`churn.ml`."""
    return (moment - _EPOCH).total_seconds() / 86400.0


def from_days(days: float) -> datetime:
    return datetime.fromtimestamp(days * 86400.0, tz=UTC)


def event_log_load(*, until: datetime | None = None) -> EventLog:
    """Every event (before ``until`` when given) with product categories and vectors.

    ``customer_ids`` of the log are customer primary keys. Product vectors are the stored
    embeddings (any model: the drift feature only compares a customer's products with each
    other); products without one get a zero row.
    """
    if connection.vendor == "postgresql":
        customer_pk, time, kind, product_pk, quantity, value = _event_arrays_postgres(until)
    else:
        customer_pk, time, kind, product_pk, quantity, value = _event_arrays(until)
    n = len(time)
    customers, customer_idx = np.unique(customer_pk, return_inverse=True)

    products = list(Product.objects.order_by("pk").values_list("pk", "category"))
    product_pks = np.array([pk for pk, _ in products], dtype=np.int64)
    categories: dict[str, int] = {}
    product_category = np.array(
        [categories.setdefault(c, len(categories)) if c else -1 for _, c in products],
        dtype=np.int64,
    )
    product_idx = np.full(n, -1, dtype=np.int64)
    has = product_pk >= 0
    product_idx[has] = np.searchsorted(product_pks, product_pk[has])
    return EventLog.build(
        customer=customer_idx,
        time=time,
        kind=kind,
        product=product_idx,
        quantity=quantity,
        value=value,
        customer_ids=tuple(int(pk) for pk in customers),
        product_category=product_category,
        product_vectors=_product_vectors(product_pks),
    )


_Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _event_arrays(until: datetime | None) -> _Arrays:
    """(customer pk, days, kind, product pk or -1, quantity, value or NaN), row by row."""
    events = Event.objects.order_by().values_list(
        "customer_id", "occurred_at", "event_type", "product_id", "quantity", "value"
    )
    if until is not None:
        events = events.filter(occurred_at__lt=until)
    rows = list(events.iterator(chunk_size=20_000))
    n = len(rows)
    return (
        np.fromiter((r[0] for r in rows), dtype=np.int64, count=n),
        np.fromiter((to_days(r[1]) for r in rows), dtype=np.float64, count=n),
        np.fromiter((_KINDS.get(r[2], OTHER) for r in rows), dtype=np.int8, count=n),
        np.fromiter((r[3] if r[3] is not None else -1 for r in rows), dtype=np.int64, count=n),
        np.fromiter((r[4] for r in rows), dtype=np.float64, count=n),
        np.fromiter(
            (float(r[5]) if r[5] is not None else np.nan for r in rows), dtype=np.float64, count=n
        ),
    )


# The columns of the query below as the binary COPY sends them and as numpy keeps them.
_COPY_FIELDS = (
    ("customer", ">i8", np.int64),
    ("seconds", ">f8", np.float64),
    ("kind", ">i2", np.int8),
    ("product", ">i8", np.int64),
    ("quantity", ">f8", np.float64),
    ("value", ">f8", np.float64),
)


def _event_arrays_postgres(until: datetime | None) -> _Arrays:
    """The same arrays, converted by PostgreSQL and read as one binary COPY
    (:func:`recommender.selectors.binary_copy.copy_columns`).

    At 50 million events the row-by-row read took minutes and held every row as Python objects
    (gigabytes). The values are the same: the epoch seconds and the money amounts are exact in
    the database and rounded once to float8, as Python rounds them, and days are seconds / 86400
    here as in ``to_days``.
    """
    kinds = " ".join(f"WHEN '{name}' THEN {code}" for name, code in _KINDS.items())
    where = "WHERE occurred_at < %s" if until is not None else ""
    query = (
        f"SELECT customer_id, EXTRACT(EPOCH FROM occurred_at)::float8, "
        f"(CASE event_type {kinds} ELSE {OTHER} END)::int2, COALESCE(product_id, -1), "
        f"quantity::float8, COALESCE(value::float8, 'NaN'::float8) "
        f"FROM {Event._meta.db_table} {where}"
    )
    params = [until] if until is not None else []
    columns: dict[str, list[np.ndarray]] = {name: [] for name, _, _ in _COPY_FIELDS}
    for block in copy_columns(query, params, _COPY_FIELDS):
        for name, values in block.items():
            columns[name].append(values)

    def column(name: str) -> np.ndarray:
        joined = np.concatenate(columns[name]) if columns[name] else np.empty(0)
        columns[name].clear()  # Each column's parts are freed as soon as it is joined.
        return joined

    days = column("seconds")
    days /= 86400.0  # In place: the same division as to_days, without a second array.
    return (
        column("customer").astype(np.int64, copy=False),
        days,
        column("kind").astype(np.int8, copy=False),
        column("product").astype(np.int64, copy=False),
        column("quantity"),
        column("value"),
    )


def _product_vectors(product_pks: np.ndarray) -> np.ndarray | None:
    rows = list(ProductEmbedding.objects.values_list("product_id", "dimension", "vector"))
    dims = {dim for _, dim, _ in rows}
    if not rows or len(dims) != 1:
        return None  # None stored, or a model change half-way: no drift feature this run.
    matrix = np.zeros((len(product_pks), dims.pop()), dtype=np.float32)
    for pk, _, vector in rows:
        i = int(np.searchsorted(product_pks, pk))
        if i < len(product_pks) and product_pks[i] == pk:
            matrix[i] = np.frombuffer(bytes(vector), dtype="<f4")
    return matrix


def event_time_range() -> tuple[datetime | None, datetime | None]:
    span = Event.objects.aggregate(first=Min("occurred_at"), last=Max("occurred_at"))
    return span["first"], span["last"]


def churn_model_build_latest() -> ChurnModelBuild | None:
    """The newest READY model build: the one scoring uses."""
    return build_latest_ready(ChurnModelBuild)


def churn_score_latest(*, customer: Customer) -> ChurnScore | None:
    """The customer's newest score (latest ``as_of``, then the latest computation)."""
    return ChurnScore.objects.filter(customer=customer).order_by("-as_of", "-computed_at").first()


def churn_score_history(*, customer: Customer, limit: int = 50) -> list[ChurnScore]:
    """The customer's scores, oldest first (the newest ``limit``)."""
    rows = list(
        ChurnScore.objects.filter(customer=customer).order_by("-as_of", "-computed_at")[:limit]
    )
    return rows[::-1]


@dataclass(frozen=True, slots=True)
class ScoringRun:
    model_version: str
    as_of: datetime
    computed_at: datetime
    customers: int


def churn_run_latest() -> ScoringRun | None:
    """The newest scoring run (as of the latest moment; the newest model among equals)."""
    row = (
        ChurnScore.objects.order_by("-as_of", "-computed_at")
        .values("model_version", "as_of", "computed_at")
        .first()
    )
    if row is None:
        return None
    n = ChurnScore.objects.filter(as_of=row["as_of"], model_version=row["model_version"]).count()
    return ScoringRun(row["model_version"], row["as_of"], row["computed_at"], n)


def churn_at_risk_list(*, band: str | None = None, limit: int = 50) -> list[ChurnScore]:
    """Customers of the latest run, riskiest first; only ``band`` when given (else medium and
    high)."""
    run = churn_run_latest()
    if run is None:
        return []
    bands = [band] if band else [RiskBand.HIGH, RiskBand.MEDIUM]
    scores: QuerySet[ChurnScore] = (
        ChurnScore.objects.filter(as_of=run.as_of, model_version=run.model_version, band__in=bands)
        .select_related("customer")
        .order_by("-score", "customer__external_id")
    )
    return list(scores[:limit])


@dataclass(frozen=True, slots=True)
class BandCounts:
    as_of: datetime
    model_version: str
    counts: dict[str, int]
    total: int


def churn_distribution_history(*, limit: int = 60) -> list[BandCounts]:
    """Customers per band for each scoring run (oldest first), for the risk-over-time chart."""
    rows = (
        ChurnScore.objects.order_by()
        .values("as_of", "model_version", "band")
        .annotate(n=Count("id"))
    )
    runs: dict[tuple[datetime, str], dict[str, int]] = {}
    for row in rows:
        runs.setdefault((row["as_of"], row["model_version"]), {})[row["band"]] = row["n"]
    out = []
    for (as_of, version), counts in sorted(runs.items())[-limit:]:
        out.append(
            BandCounts(
                as_of=as_of,
                model_version=version,
                counts={b: counts.get(b, 0) for b in RiskBand.values},
                total=sum(counts.values()),
            )
        )
    return out


def customer_purchase_history(*, customer: Customer) -> list[tuple[int, datetime]]:
    """(product pk, moment) of the customer's purchases, oldest first."""
    return list(
        Event.objects.filter(customer=customer, event_type="purchase", product__isnull=False)
        .order_by("occurred_at")
        .values_list("product_id", "occurred_at")
    )
