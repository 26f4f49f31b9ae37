"""Merchandising rules: pin, boost, bury, filter and promote products in recommendations."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from .recommendations import RecommendationKind


def rule_surfaces_all() -> list[str]:
    """Every kind of list a rule can apply to (the default of a new rule)."""
    return list(RecommendationKind.values)


class RuleAction(models.TextChoices):
    PIN = "pin", "Pin at a position"
    BOOST = "boost", "Boost (multiply the score)"
    BURY = "bury", "Bury (multiply the score down)"
    FILTER = "filter", "Filter out"
    PROMOTE = "promote", "Promotion slots"


class RuleTarget(models.TextChoices):
    PRODUCT = "product", "Products (ids)"
    CATEGORY = "category", "Categories"
    BRAND = "brand", "Brands"
    TAG = "tag", "Tags (merchant tags and accepted auto-tags)"
    PRICE_RANGE = "price_range", "Price range"
    OUT_OF_STOCK = "out_of_stock", "Out of stock (attribute in_stock is false)"


class MerchandisingRule(models.Model):
    """One merchandising rule: what it does (``action``) to which products (``target_*``).

    ``target_values`` lists product ids (the merchant's), category names, brand names or tag
    names depending on ``target_kind``; a price range uses ``price_min``/``price_max`` (either
    may be open). Each action uses one parameter: ``factor`` (boost > 1, bury < 1), ``position``
    (pin, 1-based) or ``share`` (promote: the share of positions reserved). Rules run in
    ``priority`` order, higher first; a rule applies only within ``[starts_at, ends_at)`` when
    those are set, and only while ``is_active``, and only to the kinds of list named in
    ``surfaces`` (values of ``RecommendationKind``: customer, session, similar,
    bought_together, trending). Validation with messages per field lives in
    ``recommender.services.merchandising``; the constraints below are the last line.
    """

    name = models.CharField(max_length=200)
    action = models.CharField(max_length=16, choices=RuleAction.choices)
    target_kind = models.CharField(max_length=16, choices=RuleTarget.choices)
    target_values = models.JSONField(
        default=list, blank=True, help_text="Product ids, categories, brands or tag names."
    )
    price_min = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    price_max = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    factor = models.FloatField(
        null=True, blank=True, help_text="Boost (> 1) or bury (< 1) score multiplier."
    )
    position = models.PositiveIntegerField(
        null=True, blank=True, help_text="Pin: 1-based position."
    )
    share = models.FloatField(
        null=True, blank=True, help_text="Promote: share of positions reserved, in (0, 1]."
    )
    priority = models.IntegerField(default=0, help_text="Higher runs first.")
    surfaces = models.JSONField(
        default=rule_surfaces_all,
        help_text="The lists the rule applies to: customer, session, similar, "
        "bought_together, trending.",
    )
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Indexed: the serving cache asks for the newest change (Max) every few seconds.
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        ordering = ["-priority", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(starts_at__isnull=True)
                | Q(ends_at__isnull=True)
                | Q(ends_at__gt=models.F("starts_at")),
                name="merch_rule_ends_after_start",
            ),
            models.CheckConstraint(
                condition=Q(factor__isnull=True) | Q(factor__gt=0), name="merch_rule_factor_pos"
            ),
            models.CheckConstraint(
                condition=Q(position__isnull=True) | Q(position__gte=1),
                name="merch_rule_position_from_1",
            ),
            models.CheckConstraint(
                condition=Q(share__isnull=True) | (Q(share__gt=0) & Q(share__lte=1)),
                name="merch_rule_share_0_1",
            ),
            models.CheckConstraint(
                condition=Q(price_min__isnull=True) | Q(price_min__gte=0),
                name="merch_rule_price_min_not_neg",
            ),
            models.CheckConstraint(
                condition=Q(price_min__isnull=True)
                | Q(price_max__isnull=True)
                | Q(price_max__gte=models.F("price_min")),
                name="merch_rule_price_range_ordered",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.action} {self.target_kind})"
