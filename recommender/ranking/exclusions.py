"""Which products a customer must not be shown again."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence


def excluded_products(
    *,
    product_ids: Sequence[int],
    event_types: Sequence[str],
    exclude_event_types: Collection[str],
    also: Iterable[int] = (),
) -> set[int]:
    """Products the customer had an event of an excluded type with, plus ``also``.

    With the default ``("purchase",)`` a bought product is not recommended again, while a
    viewed-but-not-bought one still may be.
    """
    if len(product_ids) != len(event_types):
        raise ValueError("product_ids and event_types must have equal lengths")
    excluded = {
        int(pid)
        for pid, kind in zip(product_ids, event_types, strict=True)
        if kind in exclude_event_types
    }
    excluded.update(int(pid) for pid in also)
    return excluded
