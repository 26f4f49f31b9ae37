"""privacy's reads: forget requests, the audit log, the shareable reports released, and the
exact figures a shareable report is made from (never shown as they are: the report service
puts them through :mod:`privacy.aggregates`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import Count, DecimalField, F, Max, Q, QuerySet, Sum, Value
from django.db.models.functions import Least

from churn.models import ChurnScore, RiskBand
from churn.selectors import churn_run_latest
from experiments.models import Experiment, VisitorStats
from recommender.models import (
    ActiveCustomersWeekly,
    Customer,
    CustomerDay,
    Event,
    Product,
)
from recommender.models.activity import event_day, stats_zone, week_start
from recommender.selectors.dashboard import product_categories

from .models import AggregateRelease, AuditEntry, ForgetRequest

# The most categories a report lists (every category of the catalogue up to this, by name).
REPORT_CATEGORIES = 1000


def forget_request_list() -> QuerySet[ForgetRequest]:
    return ForgetRequest.objects.select_related("job").order_by("-requested_at", "-id")


def audit_entry_list() -> QuerySet[AuditEntry]:
    return AuditEntry.objects.order_by("-at", "-id")


# Shareable reports released ------------------------------------------------------------------


def aggregate_release_list() -> QuerySet[AggregateRelease]:
    return AggregateRelease.objects.order_by("-released_at", "-id")


def aggregate_release_get(*, pk: int) -> AggregateRelease | None:
    return AggregateRelease.objects.filter(pk=pk).first()


def aggregate_release_for_job(*, job_id: int) -> AggregateRelease | None:
    return AggregateRelease.objects.filter(job_id=job_id).first()


def epsilon_spent(*, since: datetime) -> float:
    """The privacy budget the releases since ``since`` spent together (their ε add up)."""
    spent = AggregateRelease.objects.filter(released_at__gte=since).aggregate(s=Sum("epsilon"))
    return float(spent["s"] or 0.0)


# The exact figures behind a report -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReportWindow:
    """The days a report covers: ``days`` calendar days up to the newest event's day (like the
    dashboard's charts, so a shop whose data ends in the past still gets its last months)."""

    start: date
    end: date
    start_at: datetime  # The first moment of ``start``, in the aggregates' time zone.

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


def report_window(*, days: int) -> ReportWindow | None:
    """The window of ``days`` days ending on the newest event's day (None: no event yet)."""
    last = Event.objects.aggregate(last=Max("occurred_at"))["last"]
    if last is None:
        return None
    end = event_day(last)
    start = end - timedelta(days=days - 1)
    start_at = datetime(start.year, start.month, start.day, tzinfo=ZoneInfo(stats_zone()))
    return ReportWindow(start=start, end=end, start_at=start_at)


@dataclass(frozen=True, slots=True)
class CustomerTotals:
    customers: int  # Every customer held, whatever the window.
    active: int  # Customers with an event in the window.
    buyers: int  # Customers with a purchase in the window.


def customer_totals(*, window: ReportWindow | None) -> CustomerTotals:
    """Distinct customers: held, active in the window (from the maintained per-day membership)
    and buying in the window (purchases along the events' time index); no window, no event."""
    if window is None:
        return CustomerTotals(customers=Customer.objects.count(), active=0, buyers=0)
    active = CustomerDay.objects.filter(day__gte=window.start, day__lte=window.end).aggregate(
        n=Count("customer_id", distinct=True)
    )["n"]
    buyers = Event.objects.filter(
        event_type="purchase", occurred_at__gte=window.start_at
    ).aggregate(n=Count("customer_id", distinct=True))["n"]
    return CustomerTotals(customers=Customer.objects.count(), active=active, buyers=buyers)


def weekly_active_customers(*, window: ReportWindow) -> list[tuple[date, int]]:
    """Distinct active customers in every week (Monday) the window touches, 0 for a week with
    nobody: the weeks are the calendar's, not the data's."""
    first, last = week_start(window.start), week_start(window.end)
    counts = dict(
        ActiveCustomersWeekly.objects.filter(week__gte=first, week__lte=last).values_list(
            "week", "customers"
        )
    )
    weeks = []
    week = first
    while week <= last:
        weeks.append((week, int(counts.get(week, 0))))
        week += timedelta(weeks=1)
    return weeks


@dataclass(frozen=True, slots=True)
class CategoryFigures:
    buyers: int  # Customers counting this category among their ``max_categories``.
    revenue: float  # Their purchases' value here, each customer's clipped at ``revenue_clip``.


def category_purchases(
    *, window: ReportWindow, max_categories: int, revenue_clip: float
) -> dict[str, CategoryFigures]:
    """Buyers and revenue per product category in the window, each customer's contribution
    bounded: they count in at most ``max_categories`` categories (those they bought most in,
    the first by name among equals) and their revenue in each is clipped at ``revenue_clip``.

    Every category of the catalogue is listed (up to :data:`REPORT_CATEGORIES`, by name), 0
    where nobody bought: which groups a report shows must not depend on who bought.
    """
    categories = product_categories(limit=REPORT_CATEGORIES)
    figures = {c: CategoryFigures(0, 0.0) for c in categories}
    if not categories:
        return figures
    events = Event._meta.db_table
    products = Product._meta.db_table
    least = "LEAST" if connection.vendor == "postgresql" else "MIN"
    # Per (customer, category): purchases and revenue; ranked within each customer; the first
    # ``max_categories`` kept; then summed per category. One statement, in the database.
    sql = f"""
        SELECT category, COUNT(*), SUM({least}(revenue, %s))
        FROM (
            SELECT category, revenue, ROW_NUMBER() OVER (
                PARTITION BY customer_id ORDER BY purchases DESC, category
            ) AS position
            FROM (
                SELECT e.customer_id AS customer_id, p.category AS category,
                       COUNT(*) AS purchases, COALESCE(SUM(e.value), 0) AS revenue
                FROM {events} e JOIN {products} p ON p.id = e.product_id
                WHERE e.event_type = 'purchase' AND e.occurred_at >= %s AND p.category <> ''
                GROUP BY e.customer_id, p.category
            ) per_customer
        ) ranked
        WHERE position <= %s
        GROUP BY category
    """  # Table names from the models; values are parameters.
    with connection.cursor() as cursor:
        cursor.execute(sql, [revenue_clip, window.start_at, max_categories])
        for category, buyers, revenue in cursor.fetchall():
            if category in figures:
                figures[category] = CategoryFigures(int(buyers), float(revenue or 0))
    return figures


@dataclass(frozen=True, slots=True)
class ChurnBands:
    as_of: datetime
    customers: dict[str, int]  # Per risk band (low, medium, high), 0 for an empty band.


def churn_band_counts() -> ChurnBands | None:
    """Customers per risk band in the latest scoring run (each customer in exactly one band)."""
    run = churn_run_latest()
    if run is None:
        return None
    rows = dict(
        ChurnScore.objects.filter(as_of=run.as_of, model_version=run.model_version)
        .order_by()
        .values_list("band")
        .annotate(n=Count("id"))
        .values_list("band", "n")
    )
    return ChurnBands(as_of=run.as_of, customers={b: int(rows.get(b, 0)) for b in RiskBand.values})


@dataclass(frozen=True, slots=True)
class VariantFigures:
    visitors: int
    converted: int  # Visitors with at least one purchase.
    revenue: float  # Each visitor's revenue clipped at ``revenue_clip``.


def experiment_variant_figures(
    *, experiment: Experiment, revenue_clip: float
) -> dict[str, VariantFigures]:
    """Per variant of ``experiment`` (in their order, 0 for one nobody reached), from its last
    attribution run's per-visitor totals."""
    clip = Value(Decimal(str(revenue_clip)), output_field=DecimalField())
    rows = {
        row["variant"]: row
        for row in VisitorStats.objects.filter(experiment=experiment)
        .order_by()
        .values("variant")
        .annotate(
            visitors=Count("id"),
            converted=Count("id", filter=Q(purchases__gt=0)),
            revenue=Sum(Least(F("revenue"), clip)),
        )
    }
    out = {}
    for name in experiment.variants.order_by("position").values_list("name", flat=True):
        row = rows.get(name)
        out[name] = VariantFigures(
            visitors=int(row["visitors"]) if row else 0,
            converted=int(row["converted"]) if row else 0,
            revenue=float(row["revenue"] or 0) if row else 0.0,
        )
    return out


def experiment_choices() -> list[tuple[int, str]]:
    """(id, name) of every experiment that has started, newest first (a report's choices)."""
    return list(
        Experiment.objects.exclude(started_at__isnull=True)
        .order_by("-created_at", "-id")
        .values_list("pk", "name")
    )


def experiment_get(*, pk: int) -> Experiment | None:
    return Experiment.objects.filter(pk=pk).first()
