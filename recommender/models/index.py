from django.db import models

from recommender.choices import BuildStatus

from .jobs import Job


class IndexBuild(models.Model):
    """One immutable build of the vector index: a file on disk plus what it holds.

    Queries use the newest READY build; a new build becomes visible only once its file is
    complete and its row is READY, so a crash mid-build leaves the previous build serving.
    """

    status = models.CharField(
        max_length=16, choices=BuildStatus.choices, default=BuildStatus.BUILDING, db_index=True
    )
    path = models.CharField(max_length=500, blank=True, default="")
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
    error = models.TextField(blank=True, default="")
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        get_latest_by = "finished_at"

    def __str__(self) -> str:
        return f"index build #{self.pk} ({self.status}, {self.item_count} items)"
