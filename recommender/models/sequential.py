from django.db import models

from jobs.models import ArtifactBuild


class SequentialBuild(ArtifactBuild):
    """One immutable fit of the sequential model (issue 16): a file plus its validation.

    Served beside the newest engine build when ``enabled``: the fit found that the
    ``sequential`` source raises the hybrid's NDCG@10 on the validation split. A build that
    does not help stays READY for the record (and the evaluation) but is not served.
    """

    model_name = models.CharField(max_length=255, help_text="Embedding model of the vectors.")
    item_count = models.PositiveIntegerField(default=0)
    customer_count = models.PositiveIntegerField(default=0)
    device = models.CharField(max_length=16, blank=True, default="")
    fit_seconds = models.FloatField(null=True, blank=True)
    validation = models.JSONField(
        default=dict,
        blank=True,
        help_text="NDCG@10 on the validation split: the model alone, the hybrid without and "
        "with the sequential source; the epochs.",
    )
    enabled = models.BooleanField(
        default=False, help_text="Served: the sequential source helped on validation."
    )
    note = models.CharField(max_length=500, blank=True, default="")

    class Meta(ArtifactBuild.Meta):
        pass

    def __str__(self) -> str:
        return f"sequential build #{self.pk} ({self.status}, {self.item_count} items)"
