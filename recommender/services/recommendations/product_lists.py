"""Product lists: similar products, bought together and trending, each read now from the
serving engine (similar by meaning needs only the vector index), with the merchandising rules
of its kind applied and only active products returned.

Each may name the visitor who will see it (a customer, else an anonymous session id): a running
experiment covering the list then serves that visitor's variant (its configuration version,
rules switch or baseline), the list's rotation applies, and the log records the visitor for
last-touch attribution. Without one they are served and logged as the control, in no
experiment. The customer and session lists, and what both kinds share, are ``lists``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Literal

from recommender.ml.engine import HybridEngine
from recommender.models import Customer, Product, RecommendationKind
from recommender.ranking import reasons
from recommender.ranking.fusion import Rule, apply_rules
from recommender.ranking.rotation import Demote
from recommender.ranking.rules import RuleSet, apply_positional
from recommender.ranking.types import RankedItem

from ..merchandising import merchandising_rules_serving
from ..search import product_semantic_neighbours
from .lists import _active_products, _outside_category, _variant_rules, _variant_serving
from .logged import Recommendations, RecommendedProduct, logged
from .rotation import customer_touched, no_touches, rotation_demotion
from .serving import EngineNotReady, ServingEngine, serving_ann
from .variants import ServedVariant, customer_visitor, session_visitor, variant_assign

SimilarMode = Literal["semantic", "behavioural", "hybrid"]
# Extra results asked of the engine for product-to-product lists, so products deactivated since
# the fit can be dropped and the list still holds k.
_OVERFETCH = 10
# Times a product list's head is deepened (x4 each) when filters leave fewer than k.
_MAX_DEEPENING = 5


def _knows(engine: HybridEngine, product_id: int) -> bool:
    return bool(engine.known([product_id])[0])


def _product_list(
    *,
    surface: RecommendationKind,
    ranked_for: Callable[[int], list[RankedItem]],
    k: int,
    blocked: Collection[int] = (),
    category: str | None = None,
    rules: RuleSet | None = None,
    rotation: Demote | None = None,
) -> list[RecommendedProduct]:
    """A product-to-product or trending list with the merchandising rules of ``surface`` (those
    valid now, or of ``rules`` when given) and the ``rotation`` demotion if any.

    ``ranked_for(n)`` gives the list's best ``n`` candidates, best first. With rules, a deeper
    head is asked for (as for customer lists) so a boost can lift a product from below the
    first k; with a rotation, as many more as it demotes, to take their places. Boosts, buries,
    filters and the rotation re-score it (a head that filters leave short of k is asked for
    again, four times deeper), pins and promotions place products in the first k. ``blocked``
    products (the product the list is about) are never inserted.
    """
    ruleset = merchandising_rules_serving(surface=surface) if rules is None else rules.on(surface)
    hooks: list[Rule] = [ruleset.score_hook] if ruleset.score_rules else []
    if rotation:
        hooks.append(rotation)
    # Rotation alone only moves its demoted products down: the new first k lie within the first
    # k + (products demoted) of the old order.
    depth = (
        max(5 * k, 50) if ruleset else k + _OVERFETCH + (len(rotation.factors) if rotation else 0)
    )
    for _ in range(_MAX_DEEPENING):
        fetched = ranked_for(depth)
        head = fetched
        if hooks:
            head = sorted(apply_rules(fetched, hooks), key=lambda item: -item.score)
        # A filter that removed most of the head: look deeper rather than list fewer than k.
        if len(head) >= k or len(fetched) < depth:
            break
        depth *= 4
    if ruleset.positional:
        # Placing happens within k, so products deactivated since the fit go first.
        active = set(
            Product.objects.filter(
                pk__in=[item.product_id for item in head], is_active=True
            ).values_list("pk", flat=True)
        )
        head = [item for item in head if item.product_id in active]
        pool = {item.product_id: item for item in head}
        stop = {*blocked, *ruleset.score_hook.removed}
        stop |= _outside_category(ruleset, category, known=pool, blocked=stop)
        head = apply_positional(head[:k], ruleset.positional, k=k, pool=pool, blocked=stop)
    # As many as without rules are checked for products deactivated since the fit: loading a
    # deeper head's products cost more than the rest of the list.
    return _active_products(head[: k + _OVERFETCH], k=k)


def _product_variant(
    kind: RecommendationKind, *, customer: Customer | None, session_id: str, log: bool
) -> ServedVariant | None:
    """The variant serving this visitor on a ``kind`` list (logged lists only)."""
    if not log:
        return None
    visitor = (
        customer_visitor(customer.external_id)
        if customer is not None
        else session_visitor(session_id)
    )
    return variant_assign(kind=kind, visitor=visitor)


def _serving_if_fitted(variant: ServedVariant | None) -> ServingEngine | None:
    try:
        return _variant_serving(variant)
    except EngineNotReady:
        return None


def _popular_list(
    serving: ServingEngine,
    *,
    surface: RecommendationKind,
    k: int,
    blocked: Collection[int] = (),
    category: str | None = None,
    rules: RuleSet | None = None,
    rotation: Demote | None = None,
) -> list[RecommendedProduct]:
    """The "popularity only" baseline of a product list: the best sellers as of the fit (not
    ``blocked``, the product the list is about), with the list's rules and rotation."""
    engine = serving.engine

    def ranked_for(n: int) -> list[RankedItem]:
        found = engine.popular(k=n + len(blocked), category=category)
        return [item for item in found if item.product_id not in blocked][:n]

    return _product_list(
        surface=surface, ranked_for=ranked_for, k=k, blocked=blocked, category=category,
        rules=rules, rotation=rotation,
    )  # fmt: skip


def _product_rotation(
    serving: ServingEngine | None,
    kind: RecommendationKind,
    *,
    customer: Customer | None,
    session_id: str,
) -> Demote | None:
    """The rotation of a ``kind`` product list for its visitor. An interaction resets a count:
    a customer's are read from their newest events; an anonymous session's are not read
    (events are not indexed by session)."""
    return rotation_demotion(
        serving=serving, kind=kind, customer=customer, session_id=session_id,
        touched=customer_touched(customer) if customer is not None else no_touches,
    )  # fmt: skip


def similar_products(
    *,
    product: Product,
    k: int,
    mode: SimilarMode = "semantic",
    log: bool = True,
    rules: RuleSet | None = None,
    customer: Customer | None = None,
    session_id: str = "",
) -> Recommendations:
    """Products like ``product``: ``semantic`` by meaning (the vector index, no engine needed),
    ``behavioural`` by who bought both, ``hybrid`` both. Never the product itself. The
    merchandising rules for similar lists apply; ``log`` and ``rules`` as for customer lists.
    ``customer`` or ``session_id`` (optional) name the visitor who will see the list (above)."""
    kind = RecommendationKind.SIMILAR
    variant = _product_variant(kind, customer=customer, session_id=session_id, log=log)
    baseline = variant.baseline if variant is not None else ""
    serving: ServingEngine | None
    if mode == "semantic" and baseline != "popularity":
        serving = _serving_if_fitted(variant)
    else:
        serving = _variant_serving(variant)
        if mode == "hybrid" and not _knows(serving.engine, product.pk):
            # A product newer than the fit has no behaviour yet: its meaning is all there is.
            mode = "semantic"
    rotation = _product_rotation(serving, kind, customer=customer, session_id=session_id)
    rules = _variant_rules(variant, rules)
    items: list[RecommendedProduct] = []
    if baseline == "none":
        pass
    elif baseline == "popularity":
        assert serving is not None
        items = _popular_list(serving, surface=kind, k=k, blocked={product.pk}, rules=rules,
                              rotation=rotation)  # fmt: skip
    elif mode == "semantic":

        def nearest(n: int) -> list[RankedItem]:
            return [
                RankedItem(
                    index=-1,
                    product_id=other.pk,
                    score=score,
                    sources=("semantic",),
                    components={"semantic": score},
                    reasons=(reasons.similar_product(title=product.title),),
                )
                for other, score in product_semantic_neighbours(product=product, k=n)
            ]

        items = _product_list(
            surface=kind, ranked_for=nearest, k=k, blocked={product.pk}, rules=rules,
            rotation=rotation,
        )  # fmt: skip
    else:
        assert serving is not None
        if _knows(serving.engine, product.pk):
            engine, ann = serving.engine, serving_ann(serving)
            items = _product_list(
                surface=kind,
                ranked_for=lambda n: engine.similar(product.pk, k=n, mode=mode, ann=ann),
                k=k,
                blocked={product.pk},
                rules=rules,
                rotation=rotation,
            )
    return logged(kind=kind, serving=serving, items=items, log=log, customer=customer,
                  variant=variant, session_id=session_id)  # fmt: skip


def bought_together(
    *,
    product: Product,
    k: int,
    rules: RuleSet | None = None,
    log: bool = True,
    customer: Customer | None = None,
    session_id: str = "",
) -> Recommendations:
    """Products that share baskets with ``product``, most often first, with the merchandising
    rules for bought-together lists (``rules`` and ``log`` as for customer lists; ``customer``
    and ``session_id`` as for similar lists)."""
    kind = RecommendationKind.BOUGHT_TOGETHER
    variant = _product_variant(kind, customer=customer, session_id=session_id, log=log)
    serving = _variant_serving(variant)
    rotation = _product_rotation(serving, kind, customer=customer, session_id=session_id)
    rules = _variant_rules(variant, rules)
    items: list[RecommendedProduct] = []
    baseline = variant.baseline if variant is not None else ""
    if baseline == "popularity":
        items = _popular_list(serving, surface=kind, k=k, blocked={product.pk}, rules=rules,
                              rotation=rotation)  # fmt: skip
    elif baseline != "none" and _knows(serving.engine, product.pk):
        engine = serving.engine
        items = _product_list(
            surface=kind,
            ranked_for=lambda n: engine.bought_together(product.pk, k=n),
            k=k,
            blocked={product.pk},
            rules=rules,
            rotation=rotation,
        )
    return logged(kind=kind, serving=serving, items=items, log=log, customer=customer,
                  variant=variant, session_id=session_id)  # fmt: skip


def trending_products(
    *,
    k: int,
    category: str | None = None,
    rules: RuleSet | None = None,
    log: bool = True,
    customer: Customer | None = None,
    session_id: str = "",
) -> Recommendations:
    """Trending products as of the last fit, then popular ones, optionally in one category,
    with the merchandising rules for trending lists (``rules`` and ``log`` as for customer
    lists; ``customer`` and ``session_id`` as for similar lists)."""
    kind = RecommendationKind.TRENDING
    variant = _product_variant(kind, customer=customer, session_id=session_id, log=log)
    serving = _variant_serving(variant)
    rotation = _product_rotation(serving, kind, customer=customer, session_id=session_id)
    rules = _variant_rules(variant, rules)
    items: list[RecommendedProduct] = []
    baseline = variant.baseline if variant is not None else ""
    if baseline == "popularity":
        items = _popular_list(serving, surface=kind, k=k, category=category or None,
                              rules=rules, rotation=rotation)  # fmt: skip
    elif baseline != "none":
        engine = serving.engine
        items = _product_list(
            surface=kind,
            ranked_for=lambda n: engine.trending(k=n, category=category or None),
            k=k,
            category=category or None,
            rules=rules,
            rotation=rotation,
        )
    return logged(kind=kind, serving=serving, items=items, log=log, customer=customer,
                  variant=variant, session_id=session_id)  # fmt: skip
