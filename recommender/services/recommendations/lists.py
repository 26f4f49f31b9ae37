"""Request-time lists of a customer and of a session, each read now from the serving engine,
with the merchandising rules applied and only active products returned; and what the product
lists (``product_lists``: similar, bought together, trending) share with them.

Everything personal is read at request time: the customer's newest events (bounded by
``HISTORY_LIMIT``) become the engine's ``History``, so a new event changes the next list without
any batch job. The engine's semantic source searches the serving vector index (which also holds
products embedded since its build), so a product embedded after the last fit is recommendable at
once. Every returned product is checked against the database: an inactive product never comes
back. Every served list is logged with a recommendation id for click attribution (``logged``).

A served (logged) list that names its visitor (every customer list, a session list with a
``session_id``, a product list with a ``customer`` or ``session_id``) first asks ``variants``
whether a running experiment covers the visitor: its variant's configuration version, baseline
and rules then serve, and the log records the experiment and variant. A list whose serving
configuration turns rotation on for its kind demotes what the visitor was shown repeatedly
without touching it (``rotation``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import numpy as np
from django.utils import timezone
from threadpoolctl import ThreadpoolController

from recommender.ml.engine import History, social_proof
from recommender.models import Customer, Product, ProductEmbedding, RecommendationKind
from recommender.ranking.fusion import Rule
from recommender.ranking.rotation import Demote
from recommender.ranking.rules import HeadRecorder, RuleSet, apply_positional
from recommender.ranking.types import RankedItem
from recommender.selectors.catalog import products_active
from recommender.selectors.recommendations import EventRow, customer_recent_events

from ..embeddings import get_embedder, vector_from_bytes
from ..merchandising import merchandising_rules_serving
from ..networks import customer_network
from .logged import Recommendations, RecommendedProduct, logged
from .replaying import Replayed
from .rotation import rotation_demotion, touched_in
from .serving import (
    ServingEngine,
    serving_ann,
    serving_engine,
    serving_engine_variant,
)
from .variants import ServedVariant, customer_visitor, session_visitor, variant_assign

# Search queries of a history embedded per request (the newest distinct ones).
_MAX_QUERIES = 5


@dataclass(frozen=True, slots=True)
class SessionEvent:
    """One event of an anonymous session, as sent in a request body."""

    product: Product
    event_type: str = "view"
    occurred_at: datetime | None = None


_blas: ThreadpoolController | None = None


def _one_blas_thread() -> Any:
    """One BLAS thread for this request's matrix products.

    A web server runs several requests at once (workers x threads, about one per core); BLAS
    threads on top of them only fight for the same cores. The controller is built once (it
    scans the loaded libraries); each limit costs microseconds.
    """
    global _blas
    if _blas is None:
        _blas = ThreadpoolController()
    return _blas.limit(limits=1, user_api="blas")


def _seconds(at: datetime | float) -> float:
    return at if isinstance(at, float) else at.timestamp()


def _history(
    serving: ServingEngine,
    events: Sequence[tuple[int | None, str, datetime | float, str]],
    *,
    at: datetime | None = None,
) -> tuple[History, float]:
    """The engine's History of ``(product_id, event_type, occurred_at, search_query)`` rows
    (``occurred_at`` an aware datetime or epoch seconds), and the request's clock: the newer of
    the fit's clock and the newest event, or ``at`` for a list replayed as of then."""
    engine = serving.engine
    product_rows = [e for e in events if e[0] is not None]
    query_rows = [e for e in events if e[0] is None and e[3]][:_MAX_QUERIES]
    stamps = [_seconds(e[2]) for e in events]
    now = at.timestamp() if at is not None else max([serving.fitted_at, *stamps])
    ids = [int(e[0]) for e in product_rows]  # type: ignore[arg-type]
    unknown = {pid for pid, known in zip(ids, engine.known(ids), strict=True) if not known}
    extra_vectors: dict[int, np.ndarray] = {}
    extra_titles: dict[int, str] = {}
    if unknown:
        # Products embedded after the fit: their vectors let them shape the interests.
        for pid, dimension, vector, title in ProductEmbedding.objects.filter(
            product_id__in=unknown, model_name=serving.model_name
        ).values_list("product_id", "dimension", "vector", "product__title"):
            extra_vectors[pid] = vector_from_bytes(vector, dimension)
            extra_titles[pid] = title
    query_vectors = None
    if query_rows:
        query_vectors = get_embedder().embed([e[3] for e in query_rows])
    history = History(
        product_ids=[int(e[0]) for e in product_rows],  # type: ignore[arg-type]
        event_types=[e[1] for e in product_rows],
        timestamps=[_seconds(e[2]) for e in product_rows],
        query_vectors=query_vectors,
        query_timestamps=[_seconds(e[2]) for e in query_rows],
        query_texts=[e[3] for e in query_rows],
        extra_vectors=extra_vectors,
        extra_titles=extra_titles,
    )
    return history, now


def customer_history(
    serving: ServingEngine,
    customer: Customer,
    *,
    with_network: bool | None = None,
    at: datetime | None = None,
    events: Sequence[EventRow] | None = None,
) -> tuple[History, float]:
    """The customer's History as the engine sees it now: their newest events and their network
    (the social source, bounded by the relationships app's reader), and the request's clock;
    with ``at``, as it was at that past moment (the events before it; a replayed list).

    ``events``: the customer's newest events, when the caller read them with the customer
    (``customer_with_history``, one round trip for both); read here otherwise.

    The network is read when the serving configuration gives the social source a weight (or
    ``with_network`` says so): a shop that does not use it pays no query for it."""
    if events is None:
        events = customer_recent_events(customer=customer, before=at)
    elif at is not None:
        raise ValueError("events read now cannot make a history as of a past moment")
    history, now = _history(serving, events, at=at)
    if with_network is None:
        with_network = serving.engine.config.source_weights.get("social", 0.0) > 0
    network = customer_network(customer_id=customer.pk, now=now) if with_network else ()
    return (replace(history, network=network) if network else history), now


def _active_products(ranked: Iterable[RankedItem], *, k: int) -> list[RecommendedProduct]:
    ranked = list(ranked)
    active = products_active(ids=[item.product_id for item in ranked])
    out = [
        RecommendedProduct(
            product=active[item.product_id],
            score=round(item.score, 6),
            sources=tuple(item.sources),
            components={s: round(v, 6) for s, v in item.components.items()},
            # What a rule did explains the position best, so it comes first.
            reasons=(*item.rule_reasons, *item.reasons),
            rule_ids=tuple(dict.fromkeys(item.rule_ids)),
            promoted=item.promoted,
        )
        for item in ranked
        if item.product_id in active
    ]
    return out[:k]


def _recommend(
    serving: ServingEngine,
    history: History,
    *,
    now: float,
    k: int,
    category: str | None,
    exclude: Collection[int],
    context: Sequence[int],
    rules: RuleSet | None = None,
    surface: RecommendationKind = RecommendationKind.CUSTOMER,
    rotation: Demote | None = None,
) -> list[RecommendedProduct]:
    """The engine's list with the merchandising ``rules`` applied (default: the rules valid
    now, by the wall clock; a preview passes its own, e.g. from ``merchandising_rules_compile``),
    those of them that apply to ``surface`` lists, and the ``rotation`` demotion if any.

    Boosts, buries, filters and the rotation run in the engine's hook, on the scored head before
    diversity; pins and promotion slots run here, on the final list, so diversity cannot move
    them (nor rotation: a pinned product stays pinned).
    """
    # Exactly k are asked for: reasons cost time per item, and a product deactivated since the
    # fit is rare. When one turns up, the engine is asked again without it.
    ruleset = merchandising_rules_serving(surface=surface) if rules is None else rules.on(surface)
    ann = serving_ann(serving)
    hook: list[Rule] = [ruleset.score_hook] if ruleset.score_rules else []
    if rotation:
        hook.append(rotation)
    head = HeadRecorder() if ruleset.positional else None
    if head is not None:
        hook.append(head)
    with _one_blas_thread():
        ranked = serving.engine.recommend(
            history,
            k=k,
            now=now,
            category=category or None,
            exclude_ids=exclude,
            context_ids=context,
            ann=ann,
            rules=hook,
        )
    if head is not None:
        pool = {item.product_id: item for item in head.items}
        blocked = _not_insertable(
            serving, history, ruleset, exclude=exclude, context=context, category=category,
            known={*pool, *(item.product_id for item in ranked)},
        )  # fmt: skip
        ranked = apply_positional(ranked, ruleset.positional, k=k, pool=pool, blocked=blocked)
    items = _active_products(ranked, k=k)
    if len(items) < len(ranked):
        kept = {item.product.pk for item in items}
        gone = {item.product_id for item in ranked if item.product_id not in kept}
        return _recommend(
            serving, history, now=now, k=k, category=category,
            exclude={*exclude, *gone}, context=context, rules=ruleset, surface=surface,
            rotation=rotation,
        )  # fmt: skip
    return items


def _not_insertable(
    serving: ServingEngine,
    history: History,
    ruleset: RuleSet,
    *,
    exclude: Collection[int],
    context: Sequence[int],
    category: str | None,
    known: Collection[int],
) -> set[int]:
    """Products a pin or promotion must not insert: what the engine would exclude for this
    customer (bought, ``exclude``, ``context``), what a filter removes, and, with a category,
    products outside it (those the engine proposed already passed its category filter)."""
    blocked = serving.engine.excluded(history, exclude_ids=exclude, context_ids=context)
    blocked |= ruleset.score_hook.removed  # Prepared once per set of rules (RuleSet.filtered).
    return blocked | _outside_category(ruleset, category, known=known, blocked=blocked)


def _outside_category(
    ruleset: RuleSet, category: str | None, *, known: Collection[int], blocked: Collection[int]
) -> set[int]:
    """The products the pins and promotions of ``ruleset`` would insert that lie outside
    ``category`` (none without one). ``known`` candidates already passed the category filter;
    ``blocked`` ones are not inserted anyway."""
    if not category:
        return set()
    outside = {
        pid for rule in ruleset.positional for pid in rule.product_ids if pid not in known
    } - set(blocked)
    if not outside:
        return set()
    return outside - set(
        Product.objects.filter(pk__in=outside, category=category).values_list("pk", flat=True)
    )


def customer_recommendations(
    *,
    customer: Customer,
    k: int,
    category: str | None = None,
    exclude: Collection[int] = (),
    context: Sequence[int] = (),
    rules: RuleSet | None = None,
    log: bool = True,
    with_social_proof: bool = False,
    replay: Replayed | None = None,
    events: Sequence[EventRow] | None = None,
) -> Recommendations:
    """The top ``k`` products for ``customer`` from their newest events, read now (or given as
    ``events``, read with the customer by ``customer_with_history``).

    ``exclude`` and ``context`` are product primary keys: never return these / the products the
    customer is looking at now (they also steer the session source). A customer without events
    gets trending and popular products (and session-based ones with a context). ``rules``
    replaces the merchandising rules valid now (a preview's). ``log=False`` leaves the list out
    of the recommendation log (the dashboard's view of it is not an impression).
    ``with_social_proof`` counts, for each item, how many of the customer's direct network
    (the people they follow or trust) touched it (``RecommendedProduct.social_proof``).

    ``replay``: the list as the replay simulator asks for it, as of a past visit, with its
    engine and variant (:class:`~.replaying.Replayed`); logged dated then, marked replayed.
    """
    variant: ServedVariant | None
    if replay is not None:
        variant, serving = replay.variant, replay.serving
    else:
        variant = (
            variant_assign(
                kind=RecommendationKind.CUSTOMER, visitor=customer_visitor(customer.external_id)
            )
            if log
            else None
        )
        serving = _variant_serving(variant)
    at = replay.at if replay is not None else None
    items: list[RecommendedProduct] = []
    if variant is None or variant.baseline != "none":
        history, now = customer_history(
            serving, customer, with_network=with_social_proof or None, at=at, events=events
        )
        # A replayed visit rotates on what the replay itself showed before it, never on real
        # impressions (and real traffic never on replayed ones).
        rotation = rotation_demotion(
            serving=serving, kind=RecommendationKind.CUSTOMER, customer=customer,
            touched=lambda: touched_in(history), now=at, replayed=replay is not None,
        )  # fmt: skip
        items = _recommend(
            serving, history, now=now, k=k, category=category, exclude=exclude, context=context,
            rules=_variant_rules(variant, rules), rotation=rotation,
        )  # fmt: skip
        if with_social_proof:
            counts = social_proof(history.network, [item.product.pk for item in items], now=now)
            items = [replace(item, social_proof=counts[item.product.pk]) for item in items]
    return logged(kind=RecommendationKind.CUSTOMER, serving=serving, items=items,
                   customer=customer, log=log, variant=variant, replayed_at=at)  # fmt: skip


def _variant_serving(variant: ServedVariant | None) -> ServingEngine:
    """The engine serving ``variant`` (the serving engine without one)."""
    if variant is None:
        return serving_engine()
    return serving_engine_variant(
        config_version=variant.config_version, popularity_only=variant.baseline == "popularity"
    )


def _variant_rules(variant: ServedVariant | None, rules: RuleSet | None) -> RuleSet | None:
    """The rules a list uses: ``rules`` when given (a preview's), none for a variant served
    without rules, else None (those valid now)."""
    if rules is None and variant is not None and not variant.rules:
        return RuleSet(())
    return rules


def session_recommendations(
    *,
    events: Sequence[SessionEvent],
    k: int,
    category: str | None = None,
    exclude: Collection[int] = (),
    rules: RuleSet | None = None,
    log: bool = True,
    session_id: str = "",
) -> Recommendations:
    """Recommendations for an anonymous session from the products it touched (newest last or
    with times); those products steer the session source and are never returned. ``rules``
    and ``log`` as for customer lists. ``session_id`` (optional) identifies the visitor for
    experiments and last-touch attribution; it is logged with the list."""
    variant = (
        variant_assign(kind=RecommendationKind.SESSION, visitor=session_visitor(session_id))
        if log
        else None
    )
    serving = _variant_serving(variant)
    items: list[RecommendedProduct] = []
    if variant is None or variant.baseline != "none":
        rows = [
            (e.product.pk, e.event_type, e.occurred_at or _fit_time(serving), "") for e in events
        ]
        history, now = _history(serving, rows)
        context = list(dict.fromkeys(e.product.pk for e in events))
        # The session's own products are never returned, so no interaction resets a count.
        rotation = rotation_demotion(
            serving=serving, kind=RecommendationKind.SESSION, session_id=session_id
        )
        items = _recommend(
            serving, history, now=now, k=k, category=category, exclude=exclude,
            context=context, rules=_variant_rules(variant, rules),
            surface=RecommendationKind.SESSION, rotation=rotation,
        )  # fmt: skip
    return logged(kind=RecommendationKind.SESSION, serving=serving, items=items, log=log,
                  variant=variant, session_id=session_id)  # fmt: skip


def _fit_time(serving: ServingEngine) -> datetime:
    return datetime.fromtimestamp(serving.fitted_at, tz=timezone.get_current_timezone())
