"""Relationships: directed edges between customers."""

from django.db import models

from recommender.models import Customer


class RelationshipType(models.TextChoices):
    """What an edge ``source -> target`` says. A friendship is stored as two ``friend`` edges;
    ``referred_by`` points from the referred customer to the one who referred them."""

    FOLLOWS = "follows", "follows"
    TRUSTS = "trusts", "trusts"
    FRIEND = "friend", "friend"
    REFERRED_BY = "referred_by", "referred by"


class Relationship(models.Model):
    """One directed edge, unique per (source, target, type). Forgetting either customer removes
    it (both foreign keys cascade), so a forgotten customer leaves no edge in either direction.

    As for events, the foreign keys are not enforced by the database (``db_constraint=False``):
    a per-row check of both customers halved the import rate. Writers hold the events lock
    shared (``relationships_upsert``) and forgetting a customer holds it exclusively and deletes
    their edges (Django's cascade) in the same transaction, so no edge can point at nothing.
    The unique constraint's index serves the reads by source; ``target`` has its own.
    """

    source = models.ForeignKey(
        Customer,
        on_delete=models.CASCADE,
        related_name="relationships_out",
        db_constraint=False,
        db_index=False,
    )
    target = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="relationships_in", db_constraint=False
    )
    type = models.CharField(max_length=16, choices=RelationshipType.choices)
    weight = models.FloatField(default=1.0, help_text="How strong the tie is (> 0); 1 by default.")
    created_at = models.DateTimeField(help_text="When the relationship began (sent, or received).")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["source", "target", "type"], name="social_relationship_unique"
            ),
            models.CheckConstraint(condition=models.Q(weight__gt=0), name="social_weight_positive"),
            models.CheckConstraint(
                condition=~models.Q(source=models.F("target")), name="social_not_self"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.source_id} {self.type} {self.target_id}"
