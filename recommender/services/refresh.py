"""The nightly refresh: rebuild the vector index and refit the engine when the data has moved.

Both already serve new data between refreshes: requests read each customer's events live, and
the index's side buffer holds products embedded since its build (searched exactly). But the
collaborative signals, popularity and trending are as of the last fit, a new product has no
look-alikes until the next one, and the side buffer grows with every product embedded. So a
shop that changes every day wants both rebuilt every night. Celery beat asks
:func:`refresh_plan` once a day (``refresh-nightly``) and queues a reindex and/or a train job
only for what changed, recorded in the job history like the ones an admin starts.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Sum

from jobs.choices import JobState
from jobs.models import Job
from recommender.choices import JobKind
from recommender.models import Event, EventDailyCount, Product, ProductEmbedding
from recommender.selectors.catalog import products_awaiting_embedding
from recommender.selectors.tuning import engine_build_serving

from .embeddings import embeddings_query, get_embedder
from .index import index_build_latest_ready


@dataclass(frozen=True, slots=True)
class RefreshPlan:
    """What a refresh would do, and why (one sentence per reason, for the job's params)."""

    reindex: bool
    train: bool
    reasons: tuple[str, ...]

    def __bool__(self) -> bool:
        return self.reindex or self.train


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _index_reasons(model_name: str) -> list[str]:
    index = index_build_latest_ready()
    if index is None or index.model_name != model_name:
        return [f"no index of {model_name} yet"]
    reasons = []
    waiting = products_awaiting_embedding(model_name=model_name).count()
    if waiting:
        verb = "awaits" if waiting == 1 else "await"
        reasons.append(f"{_n(waiting, 'product')} {verb} embedding")
    since = ProductEmbedding.objects.filter(
        model_name=model_name, updated_at__gt=index.started_at
    ).count()
    if since:
        reasons.append(f"{_n(since, 'product')} embedded since index build {index.pk}")
    else:
        # Nothing embedded since: every vector the index could still serve is one it holds, so
        # fewer of them than it holds means products deleted (or deactivated) since.
        gone = index.item_count - embeddings_query(model_name=model_name).count()
        if gone > 0:
            noun = "indexed product is" if gone == 1 else "indexed products are"
            reasons.append(f"{gone} {noun} deleted or inactive since index build {index.pk}")
    return reasons


def _engine_reasons(model_name: str) -> list[str]:
    engine, version = engine_build_serving()
    if engine is None:
        return ["no engine fitted yet"]
    reasons = []
    if version is not None and engine.config_version != version:
        reasons.append(
            f"configuration version {version} is newer than engine build {engine.pk}'s "
            f"({engine.config_version})"
        )
    if engine.model_name != model_name:
        reasons.append(f"engine build {engine.pk} used {engine.model_name}, not {model_name}")
    events = Event.objects.filter(received_at__gt=engine.started_at).count()
    if events:
        reasons.append(f"{_n(events, 'event')} received since engine build {engine.pk}")
    # The fit read every product event there was; fewer of those received by its end means some
    # were deleted since (a customer forgotten through the API): the engine still holds them.
    # Every product event there is (the maintained daily aggregate) less those received since
    # the fit ended (the block-range index on received_at): no scan of the events table.
    fitted_until = engine.finished_at or engine.started_at
    known = (EventDailyCount.objects.aggregate(n=Sum("product_events"))["n"] or 0) - (
        Event.objects.filter(product__isnull=False, received_at__gt=fitted_until).count()
    )
    if known < engine.event_count:
        gone = engine.event_count - known
        reasons.append(f"{_n(gone, 'event')} deleted since engine build {engine.pk}")
    changed = Product.objects.filter(updated_at__gt=engine.started_at).count()
    if changed:
        reasons.append(f"{_n(changed, 'product')} added or changed since engine build {engine.pk}")
    return reasons


def refresh_plan() -> RefreshPlan:
    """Whether the index needs rebuilding and the engine refitting, and why.

    A reindex is followed by a refit (the engine scores by the vectors). Nothing is planned
    while a reindex or train job is queued or running: tonight's would only repeat it.
    """
    busy = Job.objects.filter(
        kind__in=[JobKind.REINDEX, JobKind.TRAIN], state__in=[JobState.QUEUED, JobState.RUNNING]
    ).first()
    if busy is not None:
        return RefreshPlan(False, False, (f"job {busy.pk} ({busy.kind}) is {busy.state}",))
    model_name = get_embedder().model_name
    index = _index_reasons(model_name)
    engine = _engine_reasons(model_name)
    return RefreshPlan(reindex=bool(index), train=bool(index or engine), reasons=(*index, *engine))
