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


def new_similar_to(*, event_type: str, title: str) -> str:
    """Exposure slots (a product nobody has bought yet): "new: similar to what you bought:
    <title>"."""
    return f"new: similar to what you {verb(event_type)}: {title}"


def new_arrival(*, category: str) -> str:
    return f"new arrival in {category}" if category else "new arrival"


# The social source: who, in the customer's words, and what they did.
_PEOPLE = {
    "follows": ("person you follow", "people you follow"),
    "trusts": ("person you trust", "people you trust"),
    "friend": ("friend of yours", "friends of yours"),
    "referred_by": ("person who referred you", "people who referred you"),
    "network": ("person in your network", "people in your network"),
}
_DID = {
    "purchase": "bought this",
    "add_to_cart": "put this in their cart",
}


def network_activity(*, count: int, relation: str, event_type: str, names: list[str]) -> str:
    """The social source: "3 people you follow bought this". People are named only when
    ``names`` are given (a shop setting, off by default): "Ann and 2 other people you follow
    bought this"."""
    one, many = _PEOPLE.get(relation, _PEOPLE["network"])
    did = _DID.get(event_type, "looked at this")
    shown = [name for name in names if name][:2]
    if not shown:
        return f"{count} {one if count == 1 else many} {did}"
    rest = count - len(shown)
    if rest <= 0:
        who = " and ".join(shown)
        return f"{who} ({one if count == 1 else many}) {did}"
    return f"{', '.join(shown)} and {rest} other {one if rest == 1 else many} {did}"


def often_after(*, event_type: str, title: str) -> str:
    """Sequential: "often bought after WHITE HANGING HEART T-LIGHT HOLDER" (what customers
    touch next after the product the customer touched last)."""
    return f"often {verb(event_type)} after {title}"


def continues_recent(*, event_type: str, category: str) -> str:
    """Sequential, when the product is in the category of the customer's latest product:
    "continues your recent purchases in Office"."""
    noun = {
        "purchase": "purchases",
        "add_to_cart": "cart additions",
        "click": "clicks",
        "view": "views",
        "search": "searches",
    }.get(event_type, "activity")
    return f"continues your recent {noun} in {category}"
