"""Churn scores and their history, and the model builds that produced them."""

from django.db import models

from jobs.models import ArtifactBuild


class ChurnJobKind(models.TextChoices):
    """churn's job kind, registered with the jobs app by ``ChurnConfig.ready``."""

    CHURN_SCORE = "churn_score", "Score churn risk"


class RiskBand(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"


class ChurnModelBuild(ArtifactBuild):
    """One trained churn model: an immutable build in the artifact store, its version and its
    backtest.

    Published like every build (:class:`jobs.models.ArtifactBuild`): the model's files (a JSON
    manifest and an npz of arrays, ``churn.ml.persistence``) are written under a name of their
    own, then the row is marked READY; scoring reads the newest READY build. ``metrics`` holds
    the evaluation made when it was trained (the model and the baselines on the latest cutoff
    whose labels were complete, with ROC and calibration curves), which the dashboard charts;
    ``version`` names the model in every score it produced.
    """

    version = models.CharField(max_length=64, unique=True)
    horizon_days = models.PositiveIntegerField()
    as_of = models.DateTimeField(help_text="Labels known up to here were used for training.")
    metrics = models.JSONField(default=dict, blank=True)
    trained_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta(ArtifactBuild.Meta):
        ordering = ["-trained_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(horizon_days__gte=1), name="churn_build_horizon_positive"
            ),
        ]

    def __str__(self) -> str:
        return self.version


class ChurnScore(models.Model):
    """A customer's churn risk as of one moment, from one model: one row per scoring run.

    Rows are never updated by a later run, so the history can be charted; rerunning the same
    run (same model, same ``as_of``) rewrites the same rows, which the unique constraint
    guarantees. ``drivers`` lists the features that moved this customer's score most, each as
    ``{"feature", "label", "value", "typical", "effect"}`` (effect in probability points).
    """

    customer = models.ForeignKey(
        "recommender.Customer", on_delete=models.CASCADE, related_name="churn_scores"
    )
    score = models.FloatField(help_text="Calibrated probability of no purchase in the horizon.")
    band = models.CharField(max_length=8, choices=RiskBand.choices)
    model_version = models.CharField(max_length=64)
    drivers = models.JSONField(default=list, blank=True)
    as_of = models.DateTimeField(help_text="Events before this moment were read.")
    computed_at = models.DateTimeField()

    class Meta:
        ordering = ["-as_of", "-score", "id"]
        indexes = [
            # The latest score of a customer; a run's at-risk list.
            models.Index(fields=["customer", "-as_of"], name="churn_score_customer_latest"),
            models.Index(fields=["as_of", "model_version", "-score"], name="churn_score_run"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "model_version", "as_of"], name="churn_score_one_per_run"
            ),
            models.CheckConstraint(
                condition=models.Q(score__gte=0) & models.Q(score__lte=1),
                name="churn_score_probability",
            ),
            models.CheckConstraint(
                condition=models.Q(band__in=RiskBand.values), name="churn_score_band_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.score:.2f} ({self.band}) as of {self.as_of:%Y-%m-%d}"
