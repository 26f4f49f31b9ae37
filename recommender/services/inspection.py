"""What the dashboard's inspector shows: why a customer gets their list, and a product's
neighbours.

The lists are the very ones the API serves (``customer_recommendations``, ``similar_products``),
but a merchandiser looking at them is not a shopper being served: they are asked for with
``log=False``, so no :class:`RecommendationLog` row is written (click attribution and the
overview's recommendation coverage count real traffic only).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from recommender.ml.engine import Explanation
from recommender.models import Customer, Product

from .recommendations import (
    EngineNotReady,
    RecommendedProduct,
    customer_recommendations,
    serving_ann,
    serving_engine,
    similar_products,
)
from .recommendations.lists import customer_history


@dataclass(frozen=True)
class SourceRow:
    product: Product | None  # None: deleted since the fit.
    product_id: int
    raw: float
    weighted: float
    fused: float
    fused_rank: int
    in_final: bool


@dataclass(frozen=True)
class InterestRow:
    share: float
    examples: tuple[tuple[str, str], ...]  # (event type, product title or search text)


@dataclass
class CustomerInspection:
    """Everything behind one customer's list; ``ready`` is False when no engine is fitted."""

    ready: bool
    message: str = ""
    engine_build: int | None = None
    config_version: int | None = None
    final: list[RecommendedProduct] = field(default_factory=list)
    weights: dict[str, float] = field(default_factory=dict)
    sources: dict[str, list[SourceRow]] = field(default_factory=dict)
    candidates: int = 0
    excluded: list[Product] = field(default_factory=list)
    top_products: list[tuple[Product, float]] = field(default_factory=list)
    top_categories: list[tuple[str, float]] = field(default_factory=list)
    interests: list[InterestRow] = field(default_factory=list)


def customer_inspection(
    *, customer: Customer, k: int = 10, per_source: int = 10
) -> CustomerInspection:
    """The customer's final list (with reasons, as the API serves it) and what led to it:
    each source's candidates with raw and weighted scores, the interests and the exclusions."""
    try:
        serving = serving_engine()
    except EngineNotReady as exc:
        return CustomerInspection(ready=False, message=str(exc))
    final = customer_recommendations(customer=customer, k=k, log=False).items
    history, now = customer_history(serving, customer, with_network=True)
    explanation: Explanation = serving.engine.explain(
        history, now=now, per_source=per_source, ann=serving_ann(serving)
    )
    wanted = {c.product_id for rows in explanation.sources.values() for c in rows}
    wanted |= {pid for pid, _ in explanation.history_weights}
    wanted |= set(explanation.excluded)
    products = Product.objects.in_bulk(list(wanted))
    in_final = {item.product.pk for item in final}
    return CustomerInspection(
        ready=True,
        engine_build=serving.build_id,
        config_version=serving.config_version,
        final=final,
        weights=explanation.weights,
        sources={
            source: [
                SourceRow(
                    product=products.get(c.product_id),
                    product_id=c.product_id,
                    raw=c.raw,
                    weighted=c.weighted,
                    fused=c.fused,
                    fused_rank=c.fused_rank,
                    in_final=c.product_id in in_final,
                )
                for c in rows
            ]
            for source, rows in explanation.sources.items()
        },
        candidates=explanation.candidates,
        excluded=[products[pid] for pid in explanation.excluded if pid in products],
        top_products=[
            (products[pid], weight)
            for pid, weight in explanation.history_weights
            if pid in products
        ],
        top_categories=list(explanation.category_weights),
        interests=[
            InterestRow(share=share, examples=examples) for share, examples in explanation.interests
        ],
    )


@dataclass
class SimilarLists:
    semantic: list[RecommendedProduct]
    behavioural: list[RecommendedProduct] | None  # None: no engine fitted yet.
    message: str = ""


def product_similar_lists(*, product: Product, k: int) -> SimilarLists:
    """The product's semantic and behavioural neighbours, as the API serves them."""
    semantic = similar_products(product=product, k=k, mode="semantic", log=False).items
    try:
        behavioural: list[RecommendedProduct] | None = similar_products(
            product=product, k=k, mode="behavioural", log=False
        ).items
        message = ""
    except EngineNotReady as exc:
        behavioural, message = None, str(exc)
    return SimilarLists(semantic=semantic, behavioural=behavioural, message=message)
