"""Stored results of offline evaluations, so metrics can be compared across config versions."""

from django.conf import settings
from django.db import models

from jobs.models import Job


class EvaluationRun(models.Model):
    """One offline evaluation of one configuration version (the evaluation page charts these).

    ``metrics`` maps a method name (``hybrid``, ``ease``, ``popularity``, ...) to its metrics
    (``recall@10``, ``ndcg@10``, ``coverage@10``, ...). ``dataset`` records what was evaluated
    (customers, products, events, sample size), so runs on different data are told apart.
    """

    config_version = models.PositiveIntegerField(db_index=True)
    protocol = models.CharField(max_length=32, default="leave-last-out")
    metrics = models.JSONField(default=dict)
    dataset = models.JSONField(default=dict)
    seconds = models.FloatField(null=True, blank=True)
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"evaluation of config v{self.config_version} ({self.protocol})"
