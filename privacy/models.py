"""Forget requests (tombstones), the audit log and the shareable reports released.

Neither table holds a shop's customer id: a forget request and an audit entry about a customer
name them by ``customer_key`` (:func:`privacy.keys.customer_key`, a keyed HMAC of the id with a
key of its own), so a forgotten customer's id is nowhere in the database, yet ``privacy_check ID``
can still find the requests about that id.
"""

from __future__ import annotations

from typing import Any, NoReturn

from django.conf import settings
from django.db import models

from jobs.models import Job


class ForgetRequest(models.Model):
    """A tombstone: a customer was forgotten at ``requested_at``; the purge job clears every
    derived artifact made before then by ``deadline_at`` and records ``applied_at``."""

    customer_key = models.CharField(
        max_length=64, db_index=True, help_text="Keyed HMAC of the shop's customer id."
    )
    customer_pk = models.BigIntegerField(
        help_text="The internal row id the customer had (rows left behind are found by it)."
    )
    events_deleted = models.PositiveIntegerField(default=0)
    requested_at = models.DateTimeField(db_index=True)
    requested_by = models.CharField(
        max_length=200, help_text="Who asked: a login ('user:alice'), a token, a command."
    )
    deadline_at = models.DateTimeField()
    job = models.ForeignKey(
        Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="The purge job that covers it (the latest one started).",
    )  # fmt: skip
    applied_at = models.DateTimeField(
        null=True, blank=True, db_index=True, help_text="When no artifact held them any more."
    )
    report = models.JSONField(
        default=dict, blank=True, help_text="What the purge did, by part (retired builds, ...)."
    )

    class Meta:
        ordering = ["-requested_at", "-id"]

    def __str__(self) -> str:
        state = "applied" if self.applied_at else "pending"
        return f"forget request #{self.pk} ({state})"


class AuditEntryQuerySet(models.QuerySet["AuditEntry"]):
    """The audit log is append-only from the application: no bulk update or delete."""

    def update(self, **kwargs: Any) -> NoReturn:
        raise AuditLogAppendOnly("the audit log is append-only: entries are never updated")

    def delete(self) -> NoReturn:
        raise AuditLogAppendOnly("the audit log is append-only: entries are never deleted")


class AuditLogAppendOnly(PermissionError):
    """Raised by any attempt to change or delete an audit entry through the ORM."""


class AuditEntry(models.Model):
    """One action: who did what to which thing, when. Written once, never changed."""

    at = models.DateTimeField(db_index=True)
    actor = models.CharField(
        max_length=200,
        help_text="'user:<login>', 'token:<prefix> (<name>)', 'command:<name>' or 'system'.",
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )  # fmt: skip
    action = models.CharField(max_length=64, db_index=True)
    target = models.CharField(
        max_length=200, blank=True, default="", help_text="What was acted on (kind:id)."
    )
    detail = models.JSONField(default=dict, blank=True)

    objects = AuditEntryQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action} {self.target}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise AuditLogAppendOnly("the audit log is append-only: entries are never updated")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AuditLogAppendOnly("the audit log is append-only: entries are never deleted")


class AggregateRelease(models.Model):
    """A shareable report, released once: its figures went through k-suppression or the
    Laplace mechanism (:mod:`privacy.aggregates`) and are stored as released, so reading it
    again draws no new noise (fresh noise on every read could be averaged away). ``epsilon``
    is what it spent of the budget (0 when it holds only k-suppressed tables). It holds
    aggregates only, no customer's id."""

    released_at = models.DateTimeField(db_index=True)
    requested_by = models.CharField(
        max_length=200, help_text="Who asked: a login ('user:alice') or a token."
    )
    job = models.ForeignKey(
        Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="The job that computed it.",
    )  # fmt: skip
    note = models.CharField(max_length=200, blank=True, default="", help_text="What it is for.")
    sections = models.JSONField(default=list)
    days = models.PositiveIntegerField(help_text="The window, in days up to the newest event.")
    k = models.PositiveIntegerField(help_text="Smallest group shown.")
    epsilon = models.FloatField(help_text="Privacy budget spent (0: k-suppression only).")
    document = models.JSONField(default=dict, help_text="The report as released.")

    class Meta:
        ordering = ["-released_at", "-id"]

    def __str__(self) -> str:
        return f"shareable report #{self.pk} ({self.released_at:%Y-%m-%d})"
