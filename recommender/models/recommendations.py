"""The recommendation engine's configuration, its fitted builds, and what it served."""

import uuid

from django.conf import settings
from django.db import models

from jobs.models import ArtifactBuild

from .customers import Customer


class RecommendationConfig(models.Model):
    """One version of the engine configuration (source weights, diversity, exclusions, ...).

    Versions are append-only: saving a change creates a new version, and restoring an old one
    copies it into a new version too, so the history says exactly what served when. Exactly one
    version is active (a partial unique constraint). A later dashboard edits it.
    """

    version = models.PositiveIntegerField(unique=True)
    config = models.JSONField(help_text="The EngineConfig as JSON (EngineConfig.to_dict()).")
    note = models.CharField(max_length=500, blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    is_active = models.BooleanField(default=False)
    locked = models.JSONField(
        default=list,
        blank=True,
        help_text="Settings automatic tuning never changes, e.g. ['half_life_days', "
        "'source_weights.semantic'] (recommender.evaluation.blend_search.SEARCHED).",
    )
    tuning = models.JSONField(
        null=True,
        blank=True,
        help_text="How automatic tuning chose this version: the validation search, its best "
        "point and the gain over the version it replaced. Empty for versions saved by hand.",
    )

    class Meta:
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_active"],
                condition=models.Q(is_active=True),
                name="recommendation_config_one_active",
            ),
        ]

    def __str__(self) -> str:
        active = ", active" if self.is_active else ""
        return f"recommendation config v{self.version}{active}"


class EngineBuild(ArtifactBuild):
    """One immutable fitted engine: a file on disk plus what it was fitted on.

    Requests use the newest READY build (see :class:`ArtifactBuild`).
    """

    config_version = models.PositiveIntegerField(help_text="RecommendationConfig.version used.")
    model_name = models.CharField(max_length=255, help_text="Embedding model of the vectors.")
    reranker = models.JSONField(
        null=True,
        blank=True,
        help_text="The learned reranker's validation figures and whether it serves (verdict); "
        "empty when RECSITE_RERANKER is off.",
    )
    item_count = models.PositiveIntegerField(default=0)
    customer_count = models.PositiveIntegerField(default=0)
    event_count = models.PositiveIntegerField(default=0)
    events_until = models.DateTimeField(
        null=True, blank=True, help_text="Time of the newest event the engine was fitted on."
    )
    fit_seconds = models.FloatField(null=True, blank=True)
    collaborative = models.CharField(
        max_length=300, blank=True, default="", help_text="The collaborative model and why."
    )
    memory = models.JSONField(
        default=dict,
        blank=True,
        help_text="Memory of the fit: the estimate by part, the budget and the measured peak.",
    )

    class Meta(ArtifactBuild.Meta):
        pass

    def __str__(self) -> str:
        return f"engine build #{self.pk} ({self.status}, {self.item_count} items)"


class RecommendationKind(models.TextChoices):
    CUSTOMER = "customer", "For a customer"
    SESSION = "session", "For a session"
    SIMILAR = "similar", "Similar products"
    BOUGHT_TOGETHER = "bought_together", "Bought together"
    TRENDING = "trending", "Trending"


class RecommendationLog(models.Model):
    """One served list, so a later click or purchase can be attributed to it."""

    recommendation_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(max_length=16, choices=RecommendationKind.choices)
    customer = models.ForeignKey(
        Customer,
        null=True,
        blank=True,
        # Forgetting a customer forgets what was shown to them too.
        on_delete=models.CASCADE,
        related_name="recommendation_logs",
        # Indexed by ``reclog_customer_recent``, which leads with the customer (and also serves
        # the cascade): a second index would cost every served list another write.
        db_index=False,
    )
    config_version = models.PositiveIntegerField(null=True, blank=True)
    engine_build = models.PositiveIntegerField(
        null=True, blank=True, help_text="EngineBuild id that served (none: no build yet)."
    )
    product_ids = models.JSONField(default=list, help_text="Returned product ids, in order.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # Online experiments (the ``experiments`` app, which ``recommender`` never imports): the
    # experiment and variant that served this list, and the anonymous session it was for.
    experiment_id = models.PositiveIntegerField(
        null=True, blank=True, help_text="Experiment id that served (none: no experiment)."
    )
    variant = models.CharField(max_length=64, blank=True, default="")
    session_id = models.CharField(max_length=128, blank=True, default="")
    # Served by the experiments app's replay simulator to a past visit, not to a real visitor:
    # dated at that visit, and left out of everything that describes real traffic.
    replayed = models.BooleanField(
        default=False, help_text="A replayed list (simulated traffic), not a real impression."
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # An experiment's lists, for its attribution run; only lists an experiment served.
            models.Index(
                fields=["experiment_id", "created_at"],
                name="reclog_experiment",
                condition=models.Q(experiment_id__isnull=False),
            ),
            # A visitor's recent lists of one kind, newest first (rotation reads them per
            # request, bounded): by customer, and by anonymous session. Only rows naming one.
            models.Index(
                fields=["customer", "kind", "-created_at"],
                name="reclog_customer_recent",
                condition=models.Q(customer__isnull=False),
            ),
            models.Index(
                fields=["session_id", "kind", "-created_at"],
                name="reclog_session_recent",
                condition=~models.Q(session_id=""),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} recommendation {self.recommendation_id}"
