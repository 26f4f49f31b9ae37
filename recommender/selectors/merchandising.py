"""Reads behind merchandising rules: the rules themselves and the products a target matches.

Tags match two ways: the merchant's own ``Product.tags`` (a JSON list) and tags a merchant
accepted in the tagging app (its ``ProductTag`` rows, reached through the reverse relation
``product_tags`` by name: recommender never imports tagging). A tag rule also matches the
tag's children in the tagging hierarchy ("kitchen" matches "kitchen/mugs").
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from django.db import connection
from django.db.models import Count, Max, Q, QuerySet

from recommender.models import MerchandisingRule, Product, RuleTarget

# The reverse relation the tagging app's ProductTag adds to Product (related_name).
_PRODUCT_TAGS = "product_tags"


def merchandising_rule_list() -> QuerySet[MerchandisingRule]:
    return MerchandisingRule.objects.select_related("created_by").order_by("-priority", "id")


def merchandising_rule_get(*, pk: int) -> MerchandisingRule | None:
    return merchandising_rule_list().filter(pk=pk).first()


def merchandising_rule_names(*, ids: Sequence[int]) -> dict[int, str]:
    """Rule names by id, e.g. for the ``rule_ids`` of a recommended item (deleted ones are
    left out)."""
    return dict(MerchandisingRule.objects.filter(pk__in=list(ids)).values_list("pk", "name"))


def merchandising_rules_enabled(*, at: datetime) -> QuerySet[MerchandisingRule]:
    """Rules switched on that apply at ``at`` or later (their window has not ended)."""
    return MerchandisingRule.objects.filter(is_active=True).filter(
        Q(ends_at__isnull=True) | Q(ends_at__gt=at)
    )


def merchandising_rules_active(*, at: datetime) -> QuerySet[MerchandisingRule]:
    """Rules that apply at ``at``, highest priority first."""
    return (
        merchandising_rules_enabled(at=at)
        .filter(Q(starts_at__isnull=True) | Q(starts_at__lte=at))
        .order_by("-priority", "id")
    )


def merchandising_rules_version() -> tuple[int, datetime | None]:
    """(number of rules, newest change): any create, edit or delete changes it."""
    row = MerchandisingRule.objects.aggregate(n=Count("id"), newest=Max("updated_at"))
    return int(row["n"]), row["newest"]


def product_external_ids_unknown(*, external_ids: Sequence[str]) -> list[str]:
    """Those of ``external_ids`` the catalogue does not have, in the given order."""
    known = set(
        Product.objects.filter(external_id__in=list(external_ids)).values_list(
            "external_id", flat=True
        )
    )
    return [pid for pid in dict.fromkeys(external_ids) if pid not in known]


def _has_auto_tags() -> bool:
    """Whether the tagging app's ProductTag relation is installed."""
    return any(
        getattr(f, "related_name", None) == _PRODUCT_TAGS or f.name == _PRODUCT_TAGS
        for f in Product._meta.get_fields()
        if f.auto_created and not f.concrete
    )


def _merchant_tagged(tags: Sequence[str]) -> list[int]:
    products = Product.objects.filter(is_active=True)
    if connection.features.supports_json_field_contains:
        query = Q()
        for tag in tags:
            query |= Q(tags__contains=[tag])
        return list(products.filter(query).values_list("pk", flat=True))
    # SQLite cannot ask "does this JSON list hold X": read the lists (only tagged products).
    wanted = set(tags)
    return [
        pk
        for pk, values in products.exclude(tags=[]).values_list("pk", "tags")
        if isinstance(values, list) and wanted.intersection(str(v) for v in values)
    ]


def _auto_tagged(tags: Sequence[str]) -> list[int]:
    if not _has_auto_tags():
        return []
    query = Q()
    for tag in tags:
        query |= Q(**{f"{_PRODUCT_TAGS}__tag__name": tag})
        query |= Q(**{f"{_PRODUCT_TAGS}__tag__name__startswith": f"{tag}/"})
    return list(
        Product.objects.filter(is_active=True)
        .filter(query, **{f"{_PRODUCT_TAGS}__status": "accepted"})
        .values_list("pk", flat=True)
        .distinct()
    )


def product_ids_matching(
    *,
    target_kind: str,
    values: Sequence[str] = (),
    price_min: Decimal | None = None,
    price_max: Decimal | None = None,
) -> list[int]:
    """Primary keys of the active products a rule target matches.

    Products come in the order of ``values`` for a product target (a pin's order), else by
    primary key.
    """
    active = Product.objects.filter(is_active=True)
    if target_kind == RuleTarget.PRODUCT:
        by_id = dict(active.filter(external_id__in=list(values)).values_list("external_id", "pk"))
        return [by_id[v] for v in dict.fromkeys(values) if v in by_id]
    if target_kind == RuleTarget.CATEGORY:
        return list(
            active.filter(category__in=list(values)).order_by("pk").values_list("pk", flat=True)
        )
    if target_kind == RuleTarget.BRAND:
        return list(
            active.filter(brand__in=list(values)).order_by("pk").values_list("pk", flat=True)
        )
    if target_kind == RuleTarget.TAG:
        return sorted(set(_merchant_tagged(values)) | set(_auto_tagged(values)))
    if target_kind == RuleTarget.PRICE_RANGE:
        query = active.filter(price__isnull=False)
        if price_min is not None:
            query = query.filter(price__gte=price_min)
        if price_max is not None:
            query = query.filter(price__lte=price_max)
        return list(query.order_by("pk").values_list("pk", flat=True))
    if target_kind == RuleTarget.OUT_OF_STOCK:
        return list(
            active.filter(attributes__in_stock=False).order_by("pk").values_list("pk", flat=True)
        )
    raise ValueError(f"target_kind: unknown target {target_kind!r}")
