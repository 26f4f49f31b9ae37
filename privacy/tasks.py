"""Celery tasks of privacy: the purge job, its beat sweep, retention, and the shareable report
job (routes and beat entries in settings)."""

from typing import Any

from celery import shared_task

from jobs.models import Job
from jobs.services.runs import job_start, job_steps_run
from privacy.services import forgetting, reports, retention


@shared_task(name="privacy.tasks.privacy_purge_run")
def privacy_purge_run(*, job_id: int) -> None:
    """Run a purge job (refit, retrain, retire, verify). A finished job is skipped."""
    job_steps_run(job_id=job_id)


def purge_start(*, triggered_by: object = None, force: bool = False) -> object:
    """Start a purge job for the pending forget requests that are due (all pending ones with
    ``force``); None when there is nothing to do or a purge job is queued or running."""
    if force:
        due = [] if forgetting.purge_job_active() else [
            r.pk for r in forgetting.forget_requests_pending()
        ]  # fmt: skip
    else:
        due = forgetting.purge_due()
    if not due:
        return None
    job = job_start(
        kind=forgetting.PURGE_KIND,
        task=privacy_purge_run,
        params=forgetting.purge_job_params(due),
        triggered_by=triggered_by,  # type: ignore[arg-type]
    )
    forgetting.purge_job_attach(job)
    return job


@shared_task(name="privacy.tasks.privacy_purge_sweep")
def privacy_purge_sweep() -> None:
    """Beat: start a purge job when forget requests are due (RECSITE_FORGET_BATCH_MINUTES)."""
    purge_start()


@shared_task(name="privacy.tasks.retention_sweep")
def retention_sweep() -> None:
    """Beat: delete events and served-list logs past their retention age."""
    retention.retention_sweep()


@shared_task(name="privacy.tasks.privacy_report_run")
def privacy_report_run(*, job_id: int) -> None:
    """Run a shareable report job (compute, suppress or add noise, store the release)."""
    job_steps_run(job_id=job_id)


def report_start(*, spec: reports.ReportSpec, triggered_by: Any = None) -> Job:
    """Start the job that makes the report ``spec`` (checked by ``report_spec_check``), audited
    as ``report.request`` with whoever asked."""
    job = job_start(
        kind=reports.REPORT_KIND,
        task=privacy_report_run,
        params=reports.report_job_params(spec=spec),
        triggered_by=triggered_by,
    )
    reports.report_requested(job=job, spec=spec)
    return job
