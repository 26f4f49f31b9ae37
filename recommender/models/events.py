"""Events: what customers did with products (views, carts, purchases, searches)."""

from django.db import models

from .catalog import Product
from .customers import Customer


class Event(models.Model):
    """One behaviour event: a customer viewed, clicked, carted, bought or searched.

    Events are immutable facts. ``event_id`` is the client's idempotency key: replaying an event
    with a known ``event_id`` is a no-op. The accepted ``event_type`` values come from the
    ``RECSITE_EVENT_TYPES`` setting and are checked at ingestion, not by a database constraint,
    so a merchant can add types without a migration.

    Sized for tens of millions of rows (docs/ingestion.md, "Events at scale"): the foreign keys
    are not enforced by the database (``db_constraint=False``), because a per-row check cost as
    much as the insert itself; the writers in ``recommender.services.ingestion`` guarantee them
    (customers and products are resolved inside the inserting transaction under a lock that
    ``customer_forget`` and ``product_delete`` take exclusively, deleting the events first).
    Every index is one that an insert extends at its right-hand end when events arrive in time
    order, except the customer history index, which the per-request read needs. On PostgreSQL a
    block-range (BRIN) index on ``received_at`` (created by migration 0008, outside the model
    state because SQLite has no such index) answers "events received since" in a few kB:
    ``received_at`` follows the physical order of the table.
    """

    # Unique through Meta.constraints rather than unique=True: on PostgreSQL that skips the extra
    # LIKE-pattern index Django adds for unique text columns, which nothing here queries.
    event_id = models.CharField(max_length=191, help_text="Idempotency key.")
    # No single-column indexes on the foreign keys: the customer history index leads with the
    # customer; there is no product index (counts per product come from the aggregates).
    customer = models.ForeignKey(
        Customer,
        on_delete=models.CASCADE,  # Deleting a customer forgets their behaviour too.
        related_name="events",
        db_index=False,
        db_constraint=False,
    )
    product = models.ForeignKey(
        Product,
        null=True,
        blank=True,
        db_index=False,
        db_constraint=False,
        # Deleting a product deletes its events, in ``product_delete`` (one statement over the
        # table, which has no product index); Django's cascade or protection would first select
        # them all row by row.
        on_delete=models.DO_NOTHING,
        related_name="events",
    )
    event_type = models.CharField(max_length=32)
    occurred_at = models.DateTimeField()
    quantity = models.PositiveIntegerField(default=1)
    value = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    session_id = models.CharField(max_length=128, blank=True, default="")
    search_query = models.CharField(max_length=500, blank=True, default="")
    # The served list the event came from, when the shop sends it back (attribution,
    # docs/experiments.md); an id no list has is kept and attributed to no one.
    recommendation_id = models.UUIDField(null=True, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [
            # A customer's recent events (interest vectors, the inspector timeline). Covering:
            # the per-request history read is an index-only scan of a few adjacent leaf pages
            # instead of one random heap page per event, which is what kept cold reads slow at
            # 50M events (docs/scale.md). SQLite ignores ``include``.
            models.Index(
                fields=["customer", "-occurred_at"],
                include=["product", "event_type", "search_query"],
                name="event_customer_history",
            ),
            # Events in time order (the API's event list and its since/until windows, the churn
            # cut-off, the newest and oldest event).
            models.Index(fields=["occurred_at", "id"], name="event_time"),
            # Events sent back with a list's id (attribution): only those rows are indexed.
            models.Index(
                fields=["recommendation_id"],
                name="event_recommendation",
                condition=models.Q(recommendation_id__isnull=False),
            ),
        ]
        constraints = [
            models.UniqueConstraint(fields=["event_id"], name="event_id_unique"),
            models.CheckConstraint(
                condition=models.Q(value__isnull=True) | models.Q(value__gte=0),
                name="event_value_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} by {self.customer_id} at {self.occurred_at:%Y-%m-%d %H:%M}"
