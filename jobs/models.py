"""The job table and the abstract build every versioned artifact extends.

The ``Job`` table kept its name (``recommender_job``) when it moved here from ``recommender``:
the move was a change of Django state only, no data moved.
"""

from django.conf import settings
from django.db import models

from .choices import BuildStatus, JobState


class Job(models.Model):
    """One run of a background job: who asked, with what, how far it got and how it ended.

    Workers update ``progress`` and ``counts`` as they go, so the API and the dashboard can show
    a live progress bar; a failed run keeps its error for the history. ``kind`` is one of the
    kinds apps registered (:mod:`jobs.registry`), checked when a job is created
    (:func:`jobs.services.runs.job_create`), not by a database choice list.
    """

    kind = models.CharField(max_length=32)
    state = models.CharField(
        max_length=16, choices=JobState.choices, default=JobState.QUEUED, db_index=True
    )
    params = models.JSONField(default=dict, blank=True)
    triggered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    progress = models.FloatField(default=0.0, help_text="0 to 100.")
    counts = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(
        null=True, blank=True, help_text="Last sign of life from the worker running it."
    )
    step = models.CharField(
        max_length=32, blank=True, default="", help_text="The step running or last started."
    )
    attempts = models.PositiveSmallIntegerField(
        default=0, help_text="How many times the current step was started (more than once: "
        "its worker died and the task was delivered again)."
    )  # fmt: skip
    worker = models.CharField(
        max_length=255,
        blank=True,
        default="",
        help_text="The process running the current step: host, pid, and what tells that pid's "
        "process from a later one (jobs.liveness).",
    )
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "recommender_job"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(progress__gte=0) & models.Q(progress__lte=100),
                name="job_progress_percent",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} ({self.state})"

    def get_kind_display(self) -> str:
        """The registered kind's label (the kind itself for one no app registers any more)."""
        from .registry import job_kind_label

        return job_kind_label(self.kind)

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.finished_at or self.heartbeat_at or self.started_at
        return round((end - self.started_at).total_seconds(), 3)


class ArtifactBuild(models.Model):
    """One build of an artifact: a file written under its own name, then marked READY.

    Readers take the newest READY build (:func:`jobs.selectors.build_latest_ready`), so a build
    becomes visible only once its file is complete and a crash mid-build leaves the previous
    one serving. Publishing, failure recording and pruning are shared too
    (:mod:`jobs.services.artifacts`).
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
