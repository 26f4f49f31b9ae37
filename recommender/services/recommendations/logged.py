"""Served lists as results and as log rows: the result types of every request-time list and the
recommendation log write (one round trip on PostgreSQL) behind click attribution.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection, transaction
from django.db.models.sql import InsertQuery

from recommender.metrics import list_served
from recommender.models import Customer, Product, RecommendationKind, RecommendationLog

from .serving import ServingEngine
from .variants import ServedVariant


@dataclass(frozen=True, slots=True)
class RecommendedProduct:
    product: Product
    score: float
    sources: tuple[str, ...]
    components: Mapping[str, float]
    reasons: tuple[str, ...]
    # Merchandising: the rules that moved this product, and whether it fills a promotion slot.
    rule_ids: tuple[int, ...] = ()
    promoted: bool = False
    # How many of the customer's direct network touched the product; None when not asked for.
    social_proof: int | None = None

    @property
    def reason(self) -> str:
        return self.reasons[0] if self.reasons else ""


@dataclass(frozen=True, slots=True)
class Recommendations:
    # None for a list that was not logged (``log=False``: a dashboard view of it).
    recommendation_id: uuid.UUID | None
    kind: str
    config_version: int | None
    engine_build: int | None
    items: list[RecommendedProduct] = field(default_factory=list)
    # The experiment and variant that served the list (None outside experiments).
    experiment: int | None = None
    variant: str | None = None


def logged(
    *,
    kind: RecommendationKind,
    serving: ServingEngine | None,
    items: list[RecommendedProduct],
    customer: Customer | None = None,
    log: bool = True,
    variant: ServedVariant | None = None,
    session_id: str = "",
    replayed_at: datetime | None = None,
) -> Recommendations:
    """``items`` as a served list, logged for click attribution unless ``log`` is off (a
    dashboard showing a list is not an impression), with the experiment ``variant`` that
    served it and the anonymous ``session_id`` it was for.

    ``replayed_at``: the list was replayed as of that past moment (the experiments app's replay
    simulator): its row is dated then and marked ``replayed``, names no engine build (the
    replay's engine was fitted in memory) and is not counted as a served list."""
    config_version = serving.config_version if serving else None
    engine_build = serving.build_id if serving and replayed_at is None else None
    recommendation_id = None
    if log:
        row = RecommendationLog(
            kind=kind,
            customer=customer,
            config_version=config_version,
            engine_build=engine_build,
            product_ids=[item.product.external_id for item in items],
            experiment_id=variant.experiment_id if variant else None,
            variant=variant.variant if variant else "",
            session_id=session_id,
            replayed=replayed_at is not None,
        )
        if replayed_at is not None:
            with transaction.atomic():
                row.save(force_insert=True)
                # ``created_at`` is set to now on insert (auto_now_add): the visit's time follows.
                RecommendationLog.objects.filter(pk=row.pk).update(created_at=replayed_at)
        elif (
            connection.vendor == "postgresql"
            and connection.get_autocommit()
            and not connection.in_atomic_block
        ):
            _insert_without_flush(row)
        else:
            with transaction.atomic():
                row.save(force_insert=True)
        recommendation_id = row.recommendation_id
        if replayed_at is None:
            list_served(kind=str(kind), item_sources=(item.sources for item in items))
    return Recommendations(
        recommendation_id=recommendation_id,
        kind=kind,
        config_version=config_version,
        engine_build=engine_build,
        items=items,
        experiment=variant.experiment_id if variant else None,
        variant=variant.variant if variant else None,
    )


def _insert_without_flush(log: RecommendationLog) -> None:
    """Insert ``log`` on PostgreSQL in one round trip, without waiting for a disk flush.

    The log is for attribution, not money: losing the last few milliseconds of rows in a
    database crash is acceptable, waiting for a flush on every request is not, and neither are
    the four round trips of an ORM transaction (BEGIN, SET LOCAL, INSERT, COMMIT) on the
    hottest endpoint. Django's own compiler writes the INSERT (defaults, ``auto_now_add``,
    JSON adaptation); the statements travel together, which client-side binding (Django's
    default for psycopg) allows.
    """
    fields = [f for f in RecommendationLog._meta.local_concrete_fields if not f.primary_key]
    query = InsertQuery(RecommendationLog)
    query.insert_values(fields, [log])
    [(sql, params)] = query.get_compiler(connection=connection).as_sql()
    with connection.cursor() as cursor:
        try:
            cursor.execute(f"BEGIN; SET LOCAL synchronous_commit TO OFF; {sql}; COMMIT", params)
        except Exception:
            # A failed statement leaves the explicit transaction open and aborted.
            cursor.execute("ROLLBACK")
            raise
