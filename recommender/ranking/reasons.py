"""Human-readable reasons, in the product's own words."""

from __future__ import annotations

VERBS = {
    "purchase": "bought",
    "add_to_cart": "added to your cart",
    "click": "clicked",
    "view": "viewed",
    "search": "searched for",
}


def verb(event_type: str) -> str:
    return VERBS.get(event_type, "looked at")


def because_you(*, event_type: str, title: str) -> str:
    """Collaborative: "because you bought WHITE HANGING HEART T-LIGHT HOLDER"."""
    return f"because you {verb(event_type)} {title}"


def similar_to(*, event_type: str, title: str) -> str:
    """Semantic: "similar to what you viewed: <title>"."""
    return f"similar to what you {verb(event_type)}: {title}"


def similar_product(*, title: str) -> str:
    """A product's similar products: "similar to <title>"."""
    return f"similar to {title}"


def matches_search(*, query: str) -> str:
    return f"matches your search for “{query}”"


def popular_in(*, category: str, trending: bool) -> str:
    """ "popular in Office this week" (trending) or "popular in Office" (long-run)."""
    where = f" in {category}" if category else ""
    return f"trending{where} this week" if trending else f"popular{where}"


def bought_together(*, title: str) -> str:
    return f"customers who bought {title} also bought this"


def goes_with(*, title: str) -> str:
    return f"goes with {title}, which you are looking at"


def new_arrival(*, category: str) -> str:
    return f"new arrival in {category}" if category else "new arrival"
