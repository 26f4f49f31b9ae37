"""What every immutable build of a derived artifact records (the vector index, the engine)."""

from django.db import models

from recommender.choices import BuildStatus

from .jobs import Job


class ArtifactBuild(models.Model):
    """One build of an artifact: a file written under its own name, then marked READY.

    Readers take the newest READY build, so a build becomes visible only once its file is
    complete and a crash mid-build leaves the previous one serving. Failure recording and
    pruning are shared too (``recommender.services.artifacts``).
    """

    status = models.CharField(
        max_length=16, choices=BuildStatus.choices, default=BuildStatus.BUILDING, db_index=True
    )
    path = models.CharField(max_length=500, blank=True, default="")
    error = models.TextField(blank=True, default="")
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
        ordering = ["-started_at", "-id"]
        get_latest_by = "finished_at"
