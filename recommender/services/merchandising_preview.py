"""Before/after lists under a set of merchandising rules, for the dashboard.

A preview is not a served list: nothing is logged (a preview must not count as an impression
for click attribution), and the rules are whatever the caller compiled, e.g. the saved active
rules plus a draft that is not saved yet (``merchandising_rules_compile``). Any kind of list
can be previewed: a customer's, a session that looked at a product, a product's similar or
bought-together products, or trending; each takes the rules that apply to its kind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import zip_longest

from recommender.models import Customer, Product, RecommendationKind
from recommender.ranking.rules import RuleSet

from .recommendations import (
    RecommendedProduct,
    SessionEvent,
    bought_together,
    customer_recommendations,
    session_recommendations,
    similar_products,
    trending_products,
)

# The lists a preview needs a customer for, and those it needs a product for.
NEEDS_CUSTOMER = frozenset({RecommendationKind.CUSTOMER})
NEEDS_PRODUCT = frozenset(
    {RecommendationKind.SESSION, RecommendationKind.SIMILAR, RecommendationKind.BOUGHT_TOGETHER}
)


@dataclass(frozen=True, slots=True)
class RulesPreview:
    before: list[RecommendedProduct]  # Without any rule.
    after: list[RecommendedProduct]  # With the given rules.

    @property
    def moved(self) -> int:
        """How many positions show another product than without the rules."""
        before = [item.product.pk for item in self.before]
        after = [item.product.pk for item in self.after]
        return sum(b != a for b, a in zip_longest(before, after))


def merchandising_rules_preview(
    *,
    rules: RuleSet,
    surface: RecommendationKind = RecommendationKind.CUSTOMER,
    customer: Customer | None = None,
    product: Product | None = None,
    k: int = 10,
) -> RulesPreview:
    """The ``surface`` list now, without rules and with ``rules``: a customer's (give
    ``customer``), a session that viewed ``product``, ``product``'s similar products (by
    meaning, the API's default) or bought-together products, or trending products.

    Raises ``ValueError`` naming the missing argument, and ``EngineNotReady`` when the list
    needs a fitted engine and there is none.
    """
    listed = _lister(surface, customer, product, k)
    return RulesPreview(before=listed(RuleSet()), after=listed(rules))


def _lister(
    surface: RecommendationKind, customer: Customer | None, product: Product | None, k: int
) -> Callable[[RuleSet], list[RecommendedProduct]]:
    """The unlogged ``surface`` list as a function of the rules."""
    if surface == RecommendationKind.TRENDING:
        return lambda rules: trending_products(k=k, rules=rules, log=False).items
    if surface in NEEDS_CUSTOMER:
        if customer is None:
            raise ValueError(f"customer: a {surface} list is previewed for a customer")
        who = customer
        return lambda rules: customer_recommendations(
            customer=who, k=k, rules=rules, log=False
        ).items
    if product is None:
        raise ValueError(f"product: a {surface} list is previewed for a product")
    item = product
    if surface == RecommendationKind.SESSION:
        return lambda rules: session_recommendations(
            events=[SessionEvent(product=item)], k=k, rules=rules, log=False
        ).items
    if surface == RecommendationKind.SIMILAR:
        return lambda rules: similar_products(product=item, k=k, rules=rules, log=False).items
    return lambda rules: bought_together(product=item, k=k, rules=rules, log=False).items
