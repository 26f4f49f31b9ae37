"""Reads of tagging: the vocabulary, a product's tags, the review queue, precision, interests."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.db.models import Case, Count, F, IntegerField, Q, QuerySet, Value, When

from jobs.choices import JobState
from jobs.models import Job
from recommender.ml.interest import event_vector_weights
from recommender.models import Customer, Event, Product
from recommender.selectors.recommendations import engine_config_current

from .models import ProductTag, ProductTagSource, ProductTagStatus, Tag, TaggingJobKind

AUTO_SOURCES = (ProductTagSource.ZERO_SHOT, ProductTagSource.SUPERVISED)
# A customer's interests are read from their most recent events; older ones weigh ~nothing
# after a few half-lives anyway.
INTEREST_EVENTS = 500


def tag_list() -> QuerySet[Tag]:
    """Every tag with its counts of accepted and pending product tags."""
    return (
        Tag.objects.select_related("parent")
        .annotate(
            accepted_count=Count(
                "product_tags", filter=Q(product_tags__status=ProductTagStatus.ACCEPTED)
            ),
            pending_count=Count(
                "product_tags", filter=Q(product_tags__status=ProductTagStatus.PENDING)
            ),
        )
        .order_by("name")
    )


def tag_get(*, name: str) -> Tag | None:
    return Tag.objects.filter(name=name).first()


def tags_leaf() -> list[Tag]:
    """Tags without children: the ones auto-tagging scores (a parent follows from its leaves)."""
    return list(Tag.objects.filter(children__isnull=True).order_by("name"))


def product_tag_list(*, product: Product) -> QuerySet[ProductTag]:
    """A product's tags: accepted first, then pending by confidence, then rejected."""
    rows = ProductTag.objects.filter(product=product).select_related("tag", "decided_by")
    return _ordered_by_status(rows)


def _ordered_by_status(rows: QuerySet[ProductTag]) -> QuerySet[ProductTag]:
    # The three statuses do not sort alphabetically in review order.
    rank = Case(
        When(status=ProductTagStatus.ACCEPTED, then=Value(0)),
        When(status=ProductTagStatus.PENDING, then=Value(1)),
        default=Value(2),
        output_field=IntegerField(),
    )
    return rows.annotate(status_rank=rank).order_by(
        "status_rank", F("confidence").desc(nulls_last=True), "tag__name"
    )


def suggestion_queue(
    *, status: str | None = ProductTagStatus.PENDING, tag: Tag | None = None
) -> QuerySet[ProductTag]:
    """Suggestions (auto-tagging's rows) most confident first, with product and tag loaded."""
    rows = ProductTag.objects.filter(source__in=AUTO_SOURCES).select_related("product", "tag")
    if status:
        rows = rows.filter(status=status)
    if tag is not None:
        rows = rows.filter(tag=tag)
    return rows.order_by("-confidence", "id")


@dataclass(frozen=True, slots=True)
class TagPrecision:
    """Per tag: merchants' reviews of suggestions, and auto-accept's record.

    ``accepted``/``rejected``: suggestions a merchant decided. ``pending``: waiting for review.
    ``auto_accepted``: accepted by auto-accept and not (yet) looked at by a merchant;
    ``audited_kept``/``audited_rejected``: auto-accepted rows a merchant then kept or rejected.
    ``threshold``/``held_out_precision``/``held_out_support``: the tag's auto-accept threshold
    in the last tagging run and the precision measured at it on held-out reviews (None: no
    run chose one; ``threshold`` None with a run: never auto-accepted).
    """

    tag: str
    accepted: int
    rejected: int
    pending: int
    auto_accepted: int = 0
    audited_kept: int = 0
    audited_rejected: int = 0
    threshold: float | None = None
    held_out_precision: float | None = None
    held_out_support: int = 0

    @property
    def reviewed(self) -> int:
        return self.accepted + self.rejected

    @property
    def precision(self) -> float | None:
        """Share of reviewed suggestions that were accepted; None before any review."""
        return self.accepted / self.reviewed if self.reviewed else None

    @property
    def audited(self) -> int:
        return self.audited_kept + self.audited_rejected

    @property
    def auto_accept_precision(self) -> float | None:
        """Measured precision of auto-accept: the share of audited auto-accepted rows that
        merchants kept; None before any audit."""
        return self.audited_kept / self.audited if self.audited else None


def tagging_last_run() -> dict[str, Any]:
    """The counts of the last successful tagging run (thresholds, weights); {} before one."""
    job = (
        Job.objects.filter(kind=TaggingJobKind.TAG, state=JobState.SUCCEEDED)
        .order_by("-finished_at", "-id")
        .only("counts")
        .first()
    )
    return dict((job.counts or {}).get("tag") or {}) if job is not None else {}


def tag_precision_estimates() -> list[TagPrecision]:
    """Per tag, how many of auto-tagging's suggestions merchants accepted and rejected, what
    waits, and what auto-accept accepted and how much of that merchants kept.

    The accepted share of reviewed suggestions estimates the precision of the pending ones, as
    long as reviewers pick suggestions to review without regard to whether they look right.
    """
    merchant = Q(decided_by_model=False)
    rows = (
        ProductTag.objects.filter(source__in=AUTO_SOURCES)
        .values("tag__name")
        .annotate(
            accepted=Count("id", filter=Q(status=ProductTagStatus.ACCEPTED) & merchant),
            rejected=Count("id", filter=Q(status=ProductTagStatus.REJECTED) & merchant),
            pending=Count("id", filter=Q(status=ProductTagStatus.PENDING)),
            auto=Count("id", filter=Q(decided_by_model=True)),
            kept=Count(
                "id",
                filter=Q(auto_accepted=True, status=ProductTagStatus.ACCEPTED) & merchant,
            ),
            dropped=Count(
                "id",
                filter=Q(auto_accepted=True, status=ProductTagStatus.REJECTED) & merchant,
            ),
        )
        .order_by("tag__name")
    )
    chosen = tagging_last_run().get("auto_accept") or {}
    return [
        TagPrecision(
            tag=r["tag__name"],
            accepted=r["accepted"],
            rejected=r["rejected"],
            pending=r["pending"],
            auto_accepted=r["auto"],
            audited_kept=r["kept"],
            audited_rejected=r["dropped"],
            threshold=(chosen.get(r["tag__name"]) or {}).get("threshold"),
            held_out_precision=(chosen.get(r["tag__name"]) or {}).get("precision"),
            held_out_support=int((chosen.get(r["tag__name"]) or {}).get("support") or 0),
        )
        for r in rows
    ]


@dataclass(frozen=True, slots=True)
class InterestTag:
    tag: str
    weight: float  # Share of the customer's (weighted) behaviour that carries this tag, 0..1.
    events: int  # Events on products with this tag.


def customer_interest_tags(*, customer: Customer, limit: int = 10) -> list[InterestTag]:
    """The customer's top tags, weighting each event like the interest vector does.

    w_t = behaviour_weight(type) x 0.5 ** (age / half_life), both from the active engine
    configuration; age is counted from the customer's newest event (relative weights do not
    depend on the clock, and old data does not decay to nothing). A product's tags are its
    accepted tags and the merchant's own ``Product.tags``; each carries the event's full
    weight, and a tag's weight is its share of the total event weight.
    """
    config = engine_config_current()
    events = list(
        Event.objects.filter(customer=customer, product__isnull=False)
        .order_by("-occurred_at", "-id")
        .values_list("product_id", "event_type", "occurred_at")[:INTEREST_EVENTS]
    )
    if not events:
        return []
    timestamps = np.array([e[2].timestamp() for e in events], dtype=np.float64)
    weights = event_vector_weights(
        event_types=[e[1] for e in events],
        timestamps=timestamps,
        behaviour_weights=config.behaviour_weights,
        half_life_days=config.half_life_days,
        now=float(timestamps.max()),
    )
    total = float(weights.sum())
    if total <= 0:
        return []
    product_ids = {e[0] for e in events}
    tags_of: dict[int, set[str]] = defaultdict(set)
    for product_id, name in ProductTag.objects.filter(
        product_id__in=product_ids, status=ProductTagStatus.ACCEPTED
    ).values_list("product_id", "tag__name"):
        tags_of[product_id].add(name)
    for product_id, merchant_tags in Product.objects.filter(pk__in=product_ids).values_list(
        "pk", "tags"
    ):
        tags_of[product_id].update(str(t) for t in merchant_tags or [] if str(t).strip())
    score: dict[str, float] = defaultdict(float)
    count: dict[str, int] = defaultdict(int)
    for (product_id, _, _), weight in zip(events, weights, strict=True):
        for name in tags_of.get(product_id, ()):
            score[name] += float(weight)
            count[name] += 1
    ranked = sorted(score.items(), key=lambda item: (-item[1], item[0]))[:limit]
    return [
        InterestTag(tag=name, weight=round(value / total, 4), events=count[name])
        for name, value in ranked
        if value > 0
    ]
