"""Served lists as results and as log rows: the result types of every request-time list and the
recommendation log write (one round trip on PostgreSQL) behind click attribution, which a
served list sends with its products check (:class:`PendingLog`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.db.models.expressions import RawSQL
from django.db.models.sql import InsertQuery

from recommender.metrics import list_served
from recommender.models import Customer, Product, RecommendationKind, RecommendationLog
from recommender.selectors.catalog import (
    products_active,
    products_active_query,
    products_at_versions,
)

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
    pending: PendingLog | None = None,
) -> Recommendations:
    """``items`` as a served list, logged for click attribution unless ``log`` is off (a
    dashboard showing a list is not an impression), with the experiment ``variant`` that
    served it and the anonymous ``session_id`` it was for.

    ``replayed_at``: the list was replayed as of that past moment (the experiments app's replay
    simulator): its row is dated then and marked ``replayed``, names no engine build (the
    replay's engine was fitted in memory) and is not counted as a served list.

    ``pending``: the list's row as its products check wrote it (:class:`PendingLog`, made with
    the same arguments); its product ids are corrected here if the list changed after."""
    config_version = serving.config_version if serving else None
    engine_build = serving.build_id if serving and replayed_at is None else None
    recommendation_id = None
    if log:
        product_ids = [item.product.external_id for item in items]
        if pending is not None and pending.row is not None:
            row = pending.row
            if pending.logged_ids != product_ids:
                RecommendationLog.objects.filter(recommendation_id=row.recommendation_id).update(
                    product_ids=product_ids
                )
        else:
            row = _log_row(
                kind=kind, config_version=config_version, engine_build=engine_build,
                customer=customer, variant=variant, session_id=session_id,
                replayed=replayed_at is not None, product_ids=product_ids,
            )  # fmt: skip
            _insert(row, replayed_at=replayed_at)
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


def _log_row(
    *,
    kind: RecommendationKind,
    config_version: int | None,
    engine_build: int | None,
    customer: Customer | None,
    variant: ServedVariant | None,
    session_id: str,
    replayed: bool,
    product_ids: Any,
) -> RecommendationLog:
    return RecommendationLog(
        kind=kind,
        customer=customer,
        config_version=config_version,
        engine_build=engine_build,
        product_ids=product_ids,
        experiment_id=variant.experiment_id if variant else None,
        variant=variant.variant if variant else "",
        session_id=session_id,
        replayed=replayed,
    )


def _insert(row: RecommendationLog, *, replayed_at: datetime | None) -> None:
    if replayed_at is not None:
        with transaction.atomic():
            row.save(force_insert=True)
            # ``created_at`` is set to now on insert (auto_now_add): the visit's time follows.
            RecommendationLog.objects.filter(pk=row.pk).update(created_at=replayed_at)
    elif _unflushed_insert_possible():
        _insert_without_flush(row)
    else:
        with transaction.atomic():
            row.save(force_insert=True)


def _unflushed_insert_possible() -> bool:
    return (
        connection.vendor == "postgresql"
        and connection.get_autocommit()
        and not connection.in_atomic_block
    )


class PendingLog:
    """The log row of a list being served, written with its products check.

    Every served list ends with two statements: which of the ranked products are still active
    (:func:`~recommender.selectors.catalog.products_active`), then the log row naming the
    products returned. On PostgreSQL outside a transaction, :meth:`products_active` sends both
    in one round trip: the row's product ids are computed by the database from the ranked ids
    (the first ``k`` active ones, in ranked order: the list the check leaves when no product
    has gone), and the row is returned with them. :func:`logged` then corrects them in the rare
    case the served list differs (a product found inactive makes the engine rank again).
    Elsewhere, :meth:`products_active` only checks, and :func:`logged` writes the row.
    """

    def __init__(
        self,
        *,
        kind: RecommendationKind,
        serving: ServingEngine | None,
        customer: Customer | None = None,
        variant: ServedVariant | None = None,
        session_id: str = "",
    ) -> None:
        self._fields: dict[str, Any] = {
            "kind": kind, "config_version": serving.config_version if serving else None,
            "engine_build": serving.build_id if serving else None, "customer": customer,
            "variant": variant, "session_id": session_id, "replayed": False,
        }  # fmt: skip
        # The written row and the product ids it holds (None until written).
        self.row: RecommendationLog | None = None
        self.logged_ids: list[str] | None = None

    def products_active(self, ids: list[int], *, k: int) -> dict[int, Product]:
        """The active products among ``ids`` (as ``products_active``), the log row written in
        the same round trip when it can be (once)."""
        if self.row is not None or not ids or not _unflushed_insert_possible():
            return products_active(ids=ids)
        product = Product._meta
        quote = connection.ops.quote_name
        # The first k active products of ``ids``, in their order, as a JSON array of their ids.
        served = RawSQL(
            f"SELECT COALESCE(jsonb_agg(s.external_id ORDER BY s.n), '[]'::jsonb) FROM ("
            f"SELECT p.{quote('external_id')}, u.n FROM unnest(%s::bigint[]) WITH ORDINALITY "
            f"AS u(id, n) JOIN {quote(product.db_table)} p ON p.{quote('id')} = u.id "
            f"WHERE p.{quote('is_active')} ORDER BY u.n LIMIT %s) s",
            [ids, k],
        )
        row = _log_row(**self._fields, product_ids=served)
        check, check_params = products_active_query(ids)
        insert, insert_params = _insert_sql(row)
        returning = quote("product_ids")
        logged: Any = None
        with connection.cursor() as cursor:
            try:
                cursor.execute(
                    f"{check}; BEGIN; SET LOCAL synchronous_commit TO OFF; "
                    f"{insert} RETURNING {returning}; COMMIT",
                    [*check_params, *insert_params],
                )
                current = cursor.fetchall()
                while cursor.nextset():  # BEGIN and SET return no rows, the INSERT its one.
                    if cursor.description is not None:
                        [(logged,)] = cursor.fetchall()
                        break
            except Exception:
                cursor.execute("ROLLBACK")  # A failed statement leaves the transaction open.
                raise
        # psycopg hands jsonb to Django as text (JSONField parses it).
        row.product_ids = json.loads(logged) if isinstance(logged, str) else logged
        self.row, self.logged_ids = row, list(row.product_ids)
        return products_at_versions(current)


def _insert_without_flush(log: RecommendationLog) -> None:
    """Insert ``log`` on PostgreSQL in one round trip, without waiting for a disk flush.

    The log is for attribution, not money: losing the last few milliseconds of rows in a
    database crash is acceptable, waiting for a flush on every request is not, and neither are
    the four round trips of an ORM transaction (BEGIN, SET LOCAL, INSERT, COMMIT) on the
    hottest endpoint. Django's own compiler writes the INSERT (defaults, ``auto_now_add``,
    JSON adaptation); the statements travel together, which client-side binding (Django's
    default for psycopg) allows.
    """
    sql, params = _insert_sql(log)
    with connection.cursor() as cursor:
        try:
            cursor.execute(f"BEGIN; SET LOCAL synchronous_commit TO OFF; {sql}; COMMIT", params)
        except Exception:
            # A failed statement leaves the explicit transaction open and aborted.
            cursor.execute("ROLLBACK")
            raise


def _insert_sql(log: RecommendationLog) -> tuple[str, Any]:
    """The INSERT of ``log`` as Django's compiler writes it (defaults, ``auto_now_add``, JSON
    adaptation, an expression's SQL)."""
    fields = [f for f in RecommendationLog._meta.local_concrete_fields if not f.primary_key]
    query = InsertQuery(RecommendationLog)
    query.insert_values(fields, [log])
    [(sql, params)] = query.get_compiler(connection=connection).as_sql()
    return sql, params
