"""Vector index builds: the immutable, versioned artifacts of the semantic search."""

from django.db import models

from jobs.models import ArtifactBuild


class IndexBuild(ArtifactBuild):
    """One immutable build of the vector index: a file on disk plus what it holds.

    Queries use the newest READY build (see :class:`ArtifactBuild`).
    """

    model_name = models.CharField(max_length=255)
    dimension = models.PositiveSmallIntegerField(default=0)
    item_count = models.PositiveIntegerField(default=0)
    m = models.PositiveSmallIntegerField(help_text="hnswlib M (graph degree).")
    ef_construction = models.PositiveIntegerField()
    ef_search = models.PositiveIntegerField()
    self_check_recall = models.FloatField(
        null=True, blank=True, help_text="recall@10 against exact search on a sample."
    )
    build_seconds = models.FloatField(null=True, blank=True)

    class Meta(ArtifactBuild.Meta):
        pass

    def __str__(self) -> str:
        return f"index build #{self.pk} ({self.status}, {self.item_count} items)"
