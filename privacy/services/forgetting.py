"""Forget requests (tombstones) and the purge job that applies them to every derived artifact.

``customer_forget`` (recommender) deletes the customer's rows at once, so they leave every list,
log view and dashboard page immediately; its signal records a :class:`ForgetRequest` here. What
was *derived* from their behaviour before that moment lives on in files: the engine builds (and
the tuning samples beside them) and the churn models. The purge job (kind ``privacy_purge``)
removes it within the deadline (``RECSITE_FORGET_DEADLINE_HOURS``, default 24):

1. ``rows``: every registered handler's ``purge`` (:mod:`privacy.registry`; other apps plug in
   there), for each request;
2. ``engine``: refit the engine on the data as it is now, then retire every engine build started
   before the newest request and delete its files (tuning samples included): a refit, not
   surgery, because the collaborative arrays mix every customer's baskets;
3. ``churn``: retrain the churn model likewise and retire the models trained before, then rescore;
4. ``verify``: the same check as ``manage.py privacy_check``; clean requests get ``applied_at``.

The beat task (``privacy.tasks.privacy_purge_sweep``, every 10 minutes) starts one job for all
pending requests once the oldest has waited ``RECSITE_FORGET_BATCH_MINUTES`` (default 60), so a
burst of requests costs one refit.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from jobs.choices import BuildStatus, JobState
from jobs.models import ArtifactBuild, Job
from jobs.registry import Progress
from jobs.services.artifact_store import artifact_store
from jobs.services.artifacts import artifacts_sweep
from privacy.context import current_actor
from privacy.keys import customer_key
from privacy.models import ForgetRequest
from privacy.registry import forget_handlers

from .audit import audit_record

logger = logging.getLogger(__name__)

PURGE_KIND = "privacy_purge"
PURGE_LABEL = "Purge forgotten customers"


class PurgeIncomplete(RuntimeError):
    """The verify step still found something of a forgotten customer."""


def forget_request_record(
    *, customer_pk: int, external_id: str, events_deleted: int
) -> ForgetRequest:
    """The tombstone of a customer just forgotten (in ``customer_forget``'s transaction)."""
    now = timezone.now()
    actor = current_actor()
    request = ForgetRequest.objects.create(
        customer_key=customer_key(external_id),
        customer_pk=customer_pk,
        events_deleted=events_deleted,
        requested_at=now,
        requested_by=actor.label[:200],
        deadline_at=now + timedelta(hours=settings.RECSITE_FORGET_DEADLINE_HOURS),
    )
    audit_record(
        action="customer.forget",
        target=f"forget-request:{request.pk}",
        detail={"customer_key": request.customer_key, "events_deleted": events_deleted},
        actor=actor,
    )
    return request


def forget_requests_pending() -> list[ForgetRequest]:
    return list(ForgetRequest.objects.filter(applied_at__isnull=True).order_by("requested_at"))


def purge_job_active() -> Job | None:
    return (
        Job.objects.filter(kind=PURGE_KIND, state__in=[JobState.QUEUED, JobState.RUNNING])
        .order_by("-created_at")
        .first()
    )


def purge_due(*, now: datetime | None = None) -> list[int]:
    """The pending requests a purge job should take now (none while one is queued or running):
    all of them, once the oldest has waited the batching time or is near its deadline."""
    if purge_job_active() is not None:
        return []
    pending = forget_requests_pending()
    if not pending:
        return []
    now = now or timezone.now()
    oldest = pending[0]
    batch = timedelta(minutes=settings.RECSITE_FORGET_BATCH_MINUTES)
    # A tenth of the deadline is kept for the job itself, whatever the batching time says.
    last_start = oldest.deadline_at - (oldest.deadline_at - oldest.requested_at) / 10
    if now - oldest.requested_at >= batch or now >= last_start:
        return [r.pk for r in pending]
    return []


def purge_job_params(request_pks: list[int]) -> dict[str, Any]:
    return {"forget_requests": sorted(request_pks)}


def purge_job_attach(job: Job) -> None:
    """Record ``job`` on the requests it covers (the job history links them)."""
    ForgetRequest.objects.filter(pk__in=job.params.get("forget_requests", [])).update(job=job)


def _requests(job: Job) -> list[ForgetRequest]:
    return list(
        ForgetRequest.objects.filter(pk__in=job.params.get("forget_requests", [])).order_by("pk")
    )


def _newest(requests: list[ForgetRequest]) -> datetime | None:
    return max((r.requested_at for r in requests), default=None)


# Steps ----------------------------------------------------------------------------------------


def step_rows(job: Job, progress: Progress) -> Mapping[str, Any]:
    """Every handler's purge for every request (cascades did most of it already)."""
    requests = _requests(job)
    done: dict[str, Any] = {}
    for request in requests:
        for handler in forget_handlers():
            result = dict(handler.purge(request))
            if result:
                done.setdefault(handler.name, {})[str(request.pk)] = result
    return {"requests": len(requests), "purged": done}


def _retire(
    model: type[ArtifactBuild], kind: str, *, before: datetime, keep: set[int]
) -> list[int]:
    """Retire READY and BUILDING builds of ``model`` started before ``before`` (except ``keep``)
    and delete their files from the store (files beside them, like tuning samples, too)."""
    store = artifact_store()
    doomed = model._default_manager.filter(
        status__in=[BuildStatus.READY, BuildStatus.BUILDING], started_at__lt=before
    ).exclude(pk__in=keep)
    retired = []
    for build in doomed:
        # Retired first: a reader that still finds the row READY must not find its files gone.
        model._default_manager.filter(pk=build.pk).update(status=BuildStatus.RETIRED)
        if build.path:
            store.delete(build.path, kind=kind)
        retired.append(build.pk)
    artifacts_sweep(model=model, kind=kind)
    return retired


def stale_engine_builds(before: datetime) -> list[int]:
    from recommender.models import EngineBuild

    return list(
        EngineBuild.objects.filter(
            status__in=[BuildStatus.READY, BuildStatus.BUILDING], started_at__lt=before
        ).values_list("pk", flat=True)
    )


def stale_churn_builds(before: datetime, *, kept: Collection[int] = ()) -> list[int]:
    from churn.models import ChurnModelBuild

    return list(
        ChurnModelBuild.objects.filter(
            status__in=[BuildStatus.READY, BuildStatus.BUILDING], started_at__lt=before
        )
        .exclude(pk__in=kept)
        .values_list("pk", flat=True)
    )


def step_engine(job: Job, progress: Progress) -> Mapping[str, Any]:
    """Refit the engine without the forgotten customers, then retire the builds made with them."""
    from recommender.models import EngineBuild
    from recommender.services.recommendations import engine_build, serving_engine_recheck
    from recommender.services.recommendations.fitting import ENGINE_KIND
    from recommender.services.tuning import tuning_sample_reset

    before = _newest(_requests(job))
    if before is None or not stale_engine_builds(before):
        return {"engine_refit": False}
    # The build serving now, when it was fitted after the requests (the nightly refit came
    # first), or one a lost attempt of this step published, is kept rather than fitted again.
    build = EngineBuild.objects.filter(status=BuildStatus.READY, started_at__gte=before).first()
    refit = build is None
    build = build or engine_build(job=job, progress=progress)
    retired = _retire(EngineBuild, ENGINE_KIND, before=before, keep={build.pk})
    serving_engine_recheck()
    tuning_sample_reset()
    return {"engine_refit": refit, "engine_build": build.pk, "engine_builds_retired": retired}


def step_churn(job: Job, progress: Progress) -> Mapping[str, Any]:
    """Retrain the churn model without them, retire the models trained with them, rescore."""
    from churn.models import ChurnModelBuild
    from churn.services import CHURN_KIND, churn_model_train, churn_scores_refresh

    requests = _requests(job)
    before = _newest(requests)
    if before is None or not stale_churn_builds(before):
        return {"churn_retrained": False}
    keep: set[int] = set()
    result: dict[str, Any] = {}
    try:
        build = churn_model_train(job=job, progress=lambda f: progress(0.7 * f))
    except Exception as exc:  # noqa: BLE001 - a shop too small to train keeps no model at all.
        result["churn_retrained"] = False
        result["churn_not_retrained"] = f"{type(exc).__name__}: {exc}"
    else:
        # The same data trains the same model (its version hashes them): a READY build of that
        # version is the model without them, whatever its row's age.
        keep.add(build.pk)
        result["churn_retrained"] = True
        result["churn_model"] = build.version
    result["churn_models_retired"] = _retire(ChurnModelBuild, CHURN_KIND, before=before, keep=keep)
    for request in requests:
        report = dict(request.report)
        report["churn_builds_cleared"] = sorted(keep)
        ForgetRequest.objects.filter(pk=request.pk).update(report=report)
    if keep:
        rescored = churn_scores_refresh(progress=lambda f: progress(0.7 + 0.3 * f))
        result["rescored"] = rescored.as_dict()
    return result


def step_verify(job: Job, progress: Progress) -> Mapping[str, Any]:
    """Prove it: nothing of any covered request is left; mark them applied."""
    from .checks import forget_request_check

    requests = _requests(job)
    findings: dict[str, list[str]] = {}
    for request in requests:
        found = forget_request_check(request)
        if found:
            findings[str(request.pk)] = found
    if findings:
        raise PurgeIncomplete(f"still held after the purge: {findings}")
    now = timezone.now()
    with transaction.atomic():
        for request in requests:
            report = {**request.report, "job": job.pk}
            ForgetRequest.objects.filter(pk=request.pk).update(applied_at=now, report=report)
    overdue = [r.pk for r in requests if r.deadline_at < now]
    if overdue:
        logger.warning("Forget requests %s applied after their deadline", overdue)
    return {"applied": [r.pk for r in requests], "applied_at": now.isoformat(), "late": overdue}


def purge_job_create(*, triggered_by: Any = None) -> Job | None:
    """A queued purge job for every pending request, for a command to run here or follow;
    None when nothing is pending or a purge job is already queued or running."""
    from jobs.services.runs import job_create

    if purge_job_active() is not None:
        return None
    pending = [r.pk for r in forget_requests_pending()]
    if not pending:
        return None
    job = job_create(kind=PURGE_KIND, params=purge_job_params(pending), triggered_by=triggered_by)
    purge_job_attach(job)
    return job
