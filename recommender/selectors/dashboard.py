"""Reads behind the merchandiser dashboard: overview aggregates, product and customer lists.

Time series are anchored on the newest event, not on today: a shop whose data stops in the past
(the demo data ends in 2011) still shows its last weeks rather than an empty chart. Nothing
here scans the events table: counts come from the aggregates maintained at ingestion
(``recommender.models.activity``), so every page costs the same at 50 million events as at 50.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db import connection
from django.db.models import Count, F, Max, Min, Q, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from jobs.choices import JobState
from jobs.models import Job
from jobs.selectors import build_latest_ready
from recommender.models import (
    ActiveCustomersDaily,
    ActiveCustomersWeekly,
    Customer,
    EngineBuild,
    Event,
    EventDailyCount,
    IndexBuild,
    Product,
    ProductEmbedding,
    ProductEventCount,
    RecommendationLog,
)
from recommender.models.activity import event_day, week_start

# Days of the per-day charts, ending at the newest event.
CHART_DAYS = 60
# Weeks of the weekly active-customers chart.
CHART_WEEKS = 16
# Served lists read for the recommendation coverage (the newest ones).
COVERAGE_LOGS = 5000


@dataclass(frozen=True, slots=True)
class DailyCount:
    day: date
    key: str
    count: int


@dataclass(frozen=True, slots=True)
class CatalogueStats:
    products: int
    active_products: int
    embedded_active: int  # Active products with a current (not stale) embedding.
    customers: int
    events: int
    first_event_at: datetime | None
    last_event_at: datetime | None

    @property
    def embedding_coverage(self) -> float | None:
        """Share of active products with a current embedding, 0..1 (None: no active product)."""
        if not self.active_products:
            return None
        return self.embedded_active / self.active_products


@dataclass(frozen=True, slots=True)
class RecommendationCoverage:
    """Distinct products served in the newest ``logs`` lists, over the active catalogue."""

    logs: int
    distinct_products: int
    active_products: int

    @property
    def share(self) -> float | None:
        if not self.logs or not self.active_products:
            return None
        return self.distinct_products / self.active_products


def catalogue_stats() -> CatalogueStats:
    """Counts for the overview. Events are counted from the daily aggregate, never by scanning
    the events table; the newest and oldest event come from the time index."""
    span = Event.objects.aggregate(first=Min("occurred_at"), last=Max("occurred_at"))
    # One pass over the products, no join: a product's ``embedding_stale`` is cleared only after
    # its vector is stored (recommender.services.embeddings), so "not stale" means "embedded".
    # The join to the vectors made this 1.2 s at a million products.
    products = Product.objects.aggregate(
        total=Count("pk"),
        active=Count("pk", filter=Q(is_active=True)),
        embedded=Count("pk", filter=Q(is_active=True, embedding_stale=False)),
    )
    return CatalogueStats(
        products=products["total"],
        active_products=products["active"],
        embedded_active=products["embedded"],
        customers=Customer.objects.count(),
        events=EventDailyCount.objects.aggregate(n=Sum("events"))["n"] or 0,
        first_event_at=span["first"],
        last_event_at=span["last"],
    )


def _first_day(*, last_event_at: datetime | None, days: int) -> date | None:
    """The first day of a window of ``days`` calendar days ending on the newest event's day."""
    if last_event_at is None:
        return None
    return event_day(last_event_at) - timedelta(days=days - 1)


def events_per_day_by_type(
    *, last_event_at: datetime | None, days: int = CHART_DAYS
) -> list[DailyCount]:
    """Events per calendar day and type over the ``days`` days up to the newest event's day
    (from the maintained daily aggregate)."""
    start = _first_day(last_event_at=last_event_at, days=days)
    if start is None:
        return []
    rows = (
        EventDailyCount.objects.filter(day__gte=start)
        .order_by("day", "event_type")
        .values_list("day", "event_type", "events")
    )
    return [DailyCount(day=day, key=kind, count=n) for day, kind, n in rows]


def active_customers_per_day(
    *, last_event_at: datetime | None, days: int = CHART_DAYS
) -> list[tuple[date, int]]:
    """Distinct customers with at least one event, per day, over the ``days`` days up to the
    newest event's day."""
    start = _first_day(last_event_at=last_event_at, days=days)
    if start is None:
        return []
    rows = ActiveCustomersDaily.objects.filter(day__gte=start).order_by("day")
    return list(rows.values_list("day", "customers"))


def active_customers_per_week(
    *, last_event_at: datetime | None, weeks: int = CHART_WEEKS
) -> list[tuple[date, int]]:
    """Distinct customers with at least one event, per week (Monday), over the ``weeks`` weeks
    up to the newest event's week."""
    if last_event_at is None:
        return []
    start = week_start(event_day(last_event_at)) - timedelta(weeks=weeks - 1)
    rows = ActiveCustomersWeekly.objects.filter(week__gte=start).order_by("week")
    return list(rows.values_list("week", "customers"))


@dataclass(frozen=True, slots=True)
class OverviewSeries:
    events_per_day: list[DailyCount]
    active_per_day: list[tuple[date, int]]
    active_per_week: list[tuple[date, int]]


def overview_series(*, stats: CatalogueStats) -> OverviewSeries:
    """The overview's three time series, read from the maintained aggregates (a few dozen rows
    each, so there is nothing to cache: every event written shows at once)."""
    last = stats.last_event_at
    return OverviewSeries(
        events_per_day=events_per_day_by_type(last_event_at=last),
        active_per_day=active_customers_per_day(last_event_at=last),
        active_per_week=active_customers_per_week(last_event_at=last),
    )


def index_build_current() -> IndexBuild | None:
    """The newest READY vector index build (the one searches use)."""
    return build_latest_ready(IndexBuild)


def engine_build_current() -> EngineBuild | None:
    """The newest READY engine build (the one recommendations use)."""
    return build_latest_ready(EngineBuild)


def build_age(finished_at: datetime | None, *, now: datetime | None = None) -> timedelta | None:
    if finished_at is None:
        return None
    return (now or timezone.now()) - finished_at


def recommendation_coverage(
    *, logs: int = COVERAGE_LOGS, active_products: int | None = None
) -> RecommendationCoverage:
    """How much of the active catalogue the newest ``logs`` served lists showed at least once
    (``active_products``: the count when the caller has it already, as the overview does)."""
    lists = list(
        RecommendationLog.objects.filter(replayed=False)  # Real traffic only.
        .order_by("-created_at", "-id")
        .values_list("product_ids", flat=True)[:logs]
    )
    served: set[str] = set()
    for product_ids in lists:
        served.update(str(pid) for pid in product_ids or ())
    active = Product.objects.filter(is_active=True)
    distinct = active.filter(external_id__in=served).count() if served else 0
    return RecommendationCoverage(
        logs=len(lists),
        distinct_products=distinct,
        active_products=active.count() if active_products is None else active_products,
    )


def jobs_recent(*, limit: int = 5) -> list[Job]:
    return list(Job.objects.select_related("triggered_by").order_by("-created_at", "-id")[:limit])


def job_running() -> Job | None:
    """The newest job still queued or running, if any."""
    return (
        Job.objects.filter(state__in=[JobState.QUEUED, JobState.RUNNING])
        .order_by("-created_at", "-id")
        .first()
    )


# Products ----------------------------------------------------------------------------------


def product_filter(
    *,
    q: str = "",
    category: str = "",
    brand: str = "",
    active: bool | None = None,
    embedded: bool | None = None,
) -> QuerySet[Product]:
    """Products matching every given filter, by external id. ``q``: id or title contains."""
    products = Product.objects.order_by("external_id")
    if q:
        products = products.filter(Q(title__icontains=q) | Q(external_id__icontains=q))
    if category:
        products = products.filter(category=category)
    if brand:
        products = products.filter(brand=brand)
    if active is not None:
        products = products.filter(is_active=active)
    if embedded is True:
        products = products.filter(embedding__isnull=False, embedding_stale=False)
    elif embedded is False:
        products = products.filter(Q(embedding__isnull=True) | Q(embedding_stale=True))
    return products


# Filter values offered as a list; a catalogue with more (17,723 brands in the 1M-product
# benchmark shop) gets a text field checked against the catalogue instead.
FILTER_CHOICES_LIMIT = 300


def _distinct_values(field: str, *, limit: int) -> list[str]:
    """The first ``limit`` distinct non-empty values of an indexed product column, in order.

    On PostgreSQL a recursive query jumps from one value to the next through the column's
    index (one probe per distinct value) instead of reading a million rows.
    """
    if connection.vendor != "postgresql":
        return list(
            Product.objects.exclude(**{field: ""})
            .order_by(field)
            .values_list(field, flat=True)
            .distinct()[:limit]
        )
    table = connection.ops.quote_name(Product._meta.db_table)
    column = connection.ops.quote_name(field)
    sql = (
        f"WITH RECURSIVE v(x) AS ((SELECT {column} FROM {table} WHERE {column} > '' "
        f"ORDER BY {column} LIMIT 1) UNION ALL SELECT (SELECT {column} FROM {table} "
        f"WHERE {column} > v.x ORDER BY {column} LIMIT 1) FROM v WHERE v.x IS NOT NULL) "
        f"SELECT x FROM v WHERE x IS NOT NULL LIMIT %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [limit])
        return [row[0] for row in cursor.fetchall()]


def product_categories(*, limit: int = FILTER_CHOICES_LIMIT + 1) -> list[str]:
    """Distinct categories, at most ``limit`` (one more than is offered as a list)."""
    return _distinct_values("category", limit=limit)


def product_brands(*, limit: int = FILTER_CHOICES_LIMIT + 1) -> list[str]:
    """Distinct brands, at most ``limit`` (one more than is offered as a list)."""
    return _distinct_values("brand", limit=limit)


def product_value_exists(*, field: str, value: str) -> bool:
    """Whether some product has this category or brand (an index probe)."""
    assert field in ("category", "brand")
    return Product.objects.filter(**{field: value}).exists()


def product_embedding_get(*, product: Product) -> ProductEmbedding | None:
    return (
        ProductEmbedding.objects.filter(product=product)
        .only("model_name", "dimension", "updated_at", "product_id")
        .first()
    )


def product_event_counts(*, product: Product) -> dict[str, int]:
    """Events of each type naming this product, from the maintained per-product aggregate."""
    rows = (
        ProductEventCount.objects.filter(product_id=product.pk)
        .order_by("event_type")
        .values_list("event_type", "events")
    )
    return dict(rows)


# Customers ---------------------------------------------------------------------------------


def customer_filter(*, q: str = "") -> QuerySet[Customer]:
    """Customers whose id contains ``q``, with their event count (``n_events``) and newest event
    (``last_event_at``) from the maintained per-customer aggregate (no count over the events)."""
    customers = Customer.objects.order_by("external_id").annotate(
        n_events=Coalesce(F("activity__events"), 0),
        last_event_at=F("activity__last_event_at"),
    )
    if q:
        customers = customers.filter(external_id__icontains=q)
    return customers


def customer_timeline(*, customer: Customer) -> QuerySet[Event]:
    """The customer's events, newest first, with the product's id and title."""
    return (
        Event.objects.filter(customer=customer)
        .select_related("product")
        .only(
            "event_id",
            "event_type",
            "occurred_at",
            "quantity",
            "value",
            "search_query",
            "product__external_id",
            "product__title",
            "product__category",
        )
        .order_by("-occurred_at", "-id")
    )
