"""Writes of merchants' decisions on product tags: accept or reject suggestions (in bulk), or
tag a product directly. A merchant's decision is final for every later auto-tagging run,
auto-accepted rows included: deciding a row makes it the merchant's."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.contrib.auth.models import AnonymousUser, User
from django.db import transaction
from django.utils import timezone

from recommender.models import Product

from ..models import ProductTag, ProductTagSource, ProductTagStatus, Tag
from .vocabulary import TagError, _ancestors

logger = logging.getLogger(__name__)


def _person(user: User | AnonymousUser | None) -> User | None:
    return user if isinstance(user, User) else None


@transaction.atomic
def product_tags_decide(
    *, ids: Iterable[int], status: str, user: User | AnonymousUser | None = None
) -> int:
    """Accept or reject product tags (bulk). Returns how many rows were decided.

    Accepting ``a/b`` also accepts ``a`` on the product (source merchant), unless a merchant
    rejected ``a`` there: a yogurt is a dairy product. Rejecting touches only the row itself.
    """
    if status not in (ProductTagStatus.ACCEPTED, ProductTagStatus.REJECTED):
        raise TagError("decision", f"must be 'accepted' or 'rejected', got {status!r}")
    ids = sorted({int(i) for i in ids})
    rows = list(ProductTag.objects.select_for_update().filter(pk__in=ids).select_related("tag"))
    missing = set(ids) - {r.pk for r in rows}
    if missing:
        raise TagError("ids", f"no product tag with id {', '.join(map(str, sorted(missing)))}")
    now, person = timezone.now(), _person(user)
    # decided_by_model=False: from now on the row is the merchant's, never revised by a run.
    ProductTag.objects.filter(pk__in=ids).update(
        status=status, decided_by=person, decided_at=now, updated_at=now, decided_by_model=False
    )
    if status == ProductTagStatus.ACCEPTED:
        names = {a for r in rows for a in _ancestors(r.tag.name)}
        tag_ids = dict(Tag.objects.filter(name__in=names).values_list("name", "pk"))
        wanted = {
            (r.product_id, tag_ids[a]) for r in rows for a in _ancestors(r.tag.name) if a in tag_ids
        }
        current = {
            (p, t): s
            for p, t, s in ProductTag.objects.filter(
                product_id__in={p for p, _ in wanted}, tag_id__in=set(tag_ids.values())
            ).values_list("product_id", "tag_id", "status")
        }
        for product_id, tag_id in sorted(wanted):
            state = current.get((product_id, tag_id))
            if state == ProductTagStatus.PENDING:
                ProductTag.objects.filter(product_id=product_id, tag_id=tag_id).update(
                    status=status,
                    decided_by=person,
                    decided_at=now,
                    updated_at=now,
                    decided_by_model=False,
                )
            elif state is None:
                ProductTag.objects.create(
                    product_id=product_id,
                    tag_id=tag_id,
                    status=status,
                    source=ProductTagSource.MERCHANT,
                    decided_by=person,
                    decided_at=now,
                )
    logger.info("%s %d product tags", status, len(rows))
    return len(rows)


@transaction.atomic
def product_tag_set(
    *, product: Product, tag: Tag, status: str, user: User | AnonymousUser | None = None
) -> ProductTag:
    """A merchant tags a product directly (or reverses a decision): the row becomes theirs."""
    row, _ = ProductTag.objects.get_or_create(
        product=product,
        tag=tag,
        defaults={
            "status": ProductTagStatus.PENDING,
            "source": ProductTagSource.MERCHANT,
        },
    )
    product_tags_decide(ids=[row.pk], status=status, user=user)
    row.refresh_from_db()
    return row
