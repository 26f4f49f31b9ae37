from django.conf import settings
from django.db import models

from recommender.choices import JobKind, JobState


class Job(models.Model):
    """One run of a background job: who asked, with what, how far it got and how it ended.

    Workers update ``progress`` and ``counts`` as they go, so the API and the dashboard can show
    a live progress bar; a failed run keeps its error for the history.
    """

    kind = models.CharField(max_length=32, choices=JobKind.choices)
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
        "process from a later one (recommender.services.liveness).",
    )
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(progress__gte=0) & models.Q(progress__lte=100),
                name="job_progress_percent",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} ({self.state})"

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.finished_at or self.heartbeat_at or self.started_at
        return round((end - self.started_at).total_seconds(), 3)
