"""Before/after lists for a customer under a set of merchandising rules, for the dashboard.

A preview is not a served list: nothing is logged (a preview must not count as an impression
for click attribution), and the rules are whatever the caller compiled, e.g. the saved active
rules plus a draft that is not saved yet (``rules_compile``).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import zip_longest

from recommender.models import Customer
from recommender.ranking.rules import RuleSet
from recommender.selectors.recommendations import customer_recent_events

from .recommendations import RecommendedProduct, _history, _recommend, serving_engine


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


def rules_preview(*, customer: Customer, rules: RuleSet, k: int = 10) -> RulesPreview:
    """The customer's list now, without rules and with ``rules``.

    Raises ``EngineNotReady`` when no engine has been fitted.
    """
    serving = serving_engine()
    history, now = _history(serving, customer_recent_events(customer=customer))

    def ranked(ruleset: RuleSet) -> list[RecommendedProduct]:
        return _recommend(
            serving, history, now=now, k=k, category=None, exclude=(), context=(), rules=ruleset
        )

    return RulesPreview(before=ranked(RuleSet()), after=ranked(rules))
