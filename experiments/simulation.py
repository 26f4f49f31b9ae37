"""The replay simulator (docs/experiments.md, "Replay"): an experiment run on the shop's past
traffic instead of live visitors.

``experiment_replay_create`` makes a **replay**: a new experiment with the variants, shares and
salt of the one replayed (or of a specification), covering the replayed period, marked by its
``replay`` settings and never started. ``experiment_replay_run`` (the ``experiment_replay``
job) then

1. fits the engine on the events before the period only
   (:func:`recommender.services.recommendations.replaying.engine_fit_before`: the serving fit on
   a cut of the events, in memory; nothing is published);
2. cuts the period's real events into visits (:mod:`experiments.analysis.replay`);
3. asks, for each visit, the customer's list from the real service
   (:func:`recommender.services.recommendations.customer_recommendations`) as of the visit's
   start, from the variant the experiment's own assignment gives the visitor: a real log row
   with the experiment and variant, dated then and marked ``replayed``;
4. records the clicks, carts and purchases of the listed products the customer really touched
   during the visit, attributes them with the attribution's explicit rule, and writes the
   experiment's aggregates as an attribution run does, so its page, API and statistics are
   those of any experiment.

Everything a replay writes belongs to it (its experiment, variants and aggregates, and log
rows naming it and marked replayed); the shop's events, customers, configuration, engine and
index builds are only read. :func:`experiment_replay_discard` removes all of it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from time import perf_counter
from typing import Any

from django.db import transaction
from django.utils import timezone

from jobs.models import Job
from jobs.registry import Progress
from recommender.models import Customer, RecommendationKind, RecommendationLog
from recommender.services.recommendations import customer_recommendations
from recommender.services.recommendations.replaying import (
    EngineBefore,
    Replayed,
    engine_fit_before,
)
from recommender.services.recommendations.serving import serving_with_variant
from recommender.services.recommendations.variants import ServedVariant

from . import selectors
from .analysis.assignment import assign
from .analysis.attribution import Action, Shown, attribute
from .analysis.replay import (
    DEFAULT_GAP_SECONDS,
    AaCalibration,
    Visit,
    aa_calibration,
    recorded,
    visits_of,
)
from .models import Experiment, ExperimentList, ExperimentState
from .services import (
    ExperimentError,
    ExperimentSpec,
    VariantSpec,
    _spec_of,
    _tally,
    attribution_windows,
    experiment_aggregates_write,
    experiment_create,
)

logger = logging.getLogger(__name__)

MAX_DAYS = 366
MAX_K = 100
DEFAULT_K = 10
# Visits served per transaction: fewer commits, yet short enough not to keep SQLite's single
# writer lock from the heartbeat and other writers for long (a replay that fails, or runs again,
# first deletes the rows it wrote).
_BATCH = 50


@dataclass(frozen=True, slots=True)
class ReplayPlan:
    """What to replay: ``days`` days from the start of ``since`` (a day in the shop's time
    zone), lists of ``k`` products, visits cut at pauses longer than ``gap_minutes``."""

    since: date
    days: int
    k: int = DEFAULT_K
    gap_minutes: float = DEFAULT_GAP_SECONDS / 60

    @property
    def starts_at(self) -> datetime:
        return timezone.make_aware(datetime.combine(self.since, time.min))

    @property
    def ends_at(self) -> datetime:
        return self.starts_at + timedelta(days=self.days)

    def as_dict(self) -> dict[str, Any]:
        return {
            "from": self.since.isoformat(),
            "days": self.days,
            "k": self.k,
            "gap_minutes": self.gap_minutes,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> ReplayPlan:
        return cls(
            since=date.fromisoformat(str(raw["from"])),
            days=int(raw["days"]),
            k=int(raw.get("k", DEFAULT_K)),
            gap_minutes=float(raw.get("gap_minutes", DEFAULT_GAP_SECONDS / 60)),
        )


def replay_plan_check(plan: ReplayPlan) -> None:
    """Refuse a plan the data cannot replay, naming the field (422): a period without events, or
    without events before it to learn from; days, k and the gap out of range."""
    if not 1 <= plan.days <= MAX_DAYS:
        raise ExperimentError("days", f"a whole number of days from 1 to {MAX_DAYS}")
    if not 1 <= plan.k <= MAX_K:
        raise ExperimentError("k", f"products per list: from 1 to {MAX_K}")
    if not 0 < plan.gap_minutes <= 24 * 60:
        raise ExperimentError("gap_minutes", "minutes between visits: more than 0, at most 1440")
    first, last = selectors.events_span()
    if first is None or last is None:
        raise ExperimentError("from", "the shop has no events to replay")
    if plan.starts_at <= first:
        raise ExperimentError(
            "from",
            f"no event happened before {plan.since.isoformat()} (the first is from "
            f"{timezone.localdate(first).isoformat()}): the engine would have nothing to learn",
        )
    if plan.starts_at > last:
        raise ExperimentError(
            "from",
            f"no event happened on or after {plan.since.isoformat()} (the last is from "
            f"{timezone.localdate(last).isoformat()}): there is nothing to replay",
        )


def _replay_name(base: str, plan: ReplayPlan) -> str:
    suffix = f" · replay from {plan.since.isoformat()}, {plan.days} days"
    name = f"{base[: 200 - len(suffix) - 4]}{suffix}"
    n = 2
    while Experiment.objects.filter(name=name).exists():
        name = f"{base[: 200 - len(suffix) - 8]}{suffix} ({n})"
        n += 1
    return name


def experiment_replay_create(
    *,
    plan: ReplayPlan,
    source: Experiment | None = None,
    spec: ExperimentSpec | None = None,
    created_by: object = None,
) -> Experiment:
    """A replay of ``source`` (its variants, shares and salt, so each visitor gets the variant
    the experiment gives them; named after it) or of ``spec`` (named as it says), queued: run
    it with :func:`experiment_replay_run` (the ``experiment_replay`` job). Refused values raise
    :class:`ExperimentError` naming the field; nothing is saved then."""
    if (source is None) == (spec is None):
        raise ValueError("give a source experiment or a specification, not both")
    if source is not None:
        if source.replay is not None:
            raise ExperimentError(
                "experiment",
                "this is a replay already: replay the experiment it was made of",
                conflict=True,
            )
        spec = _spec_of(source)
        spec.name = _replay_name(source.name, plan)
    assert spec is not None
    if ExperimentList.CUSTOMER not in spec.lists:
        raise ExperimentError(
            "lists",
            "the replay serves customer lists (each visit is a customer's): the experiment must "
            "cover the customer list",
        )
    replay_plan_check(plan)
    spec.starts_at, spec.ends_at = plan.starts_at, plan.ends_at
    with transaction.atomic():
        experiment = experiment_create(spec=spec, created_by=created_by, copied_from=source)
        experiment.state = ExperimentState.STOPPED
        if source is not None:
            experiment.salt = source.salt  # The replayed experiment's own assignment.
        experiment.replay = {**plan.as_dict(), "status": "queued"}
        experiment.save(update_fields=["state", "salt", "replay"])
    fresh = selectors.experiment_get(pk=experiment.pk)
    assert fresh is not None
    return fresh


def _replay_update(experiment: Experiment, **changes: Any) -> None:
    experiment.replay = {**(experiment.replay or {}), **changes}
    Experiment.objects.filter(pk=experiment.pk).update(replay=experiment.replay)


def experiment_replay_rows_delete(*, experiment: Experiment) -> int:
    """Delete the log rows a replay wrote (before it runs again, or when it is discarded)."""
    deleted, _ = RecommendationLog.objects.filter(
        experiment_id=experiment.pk, replayed=True
    ).delete()
    return deleted


def experiment_replay_discard(*, experiment: Experiment) -> int:
    """Delete a replay and everything it wrote (its log rows, aggregates and variants); returns
    how many log rows went. Only a replay can be discarded this way."""
    if experiment.replay is None:
        raise ExperimentError("experiment", "only a replay can be discarded (this one is live)")
    with transaction.atomic():
        rows = experiment_replay_rows_delete(experiment=experiment)
        experiment.delete()  # Variants and aggregates cascade.
    return rows


def _variants_served(experiment: Experiment) -> list[ServedVariant]:
    return [
        ServedVariant(
            experiment_id=experiment.pk,
            variant=v.name,
            config_version=v.config_version,
            baseline=v.baseline,  # type: ignore[arg-type]
            rules=v.rules,
        )
        for v in experiment.variants.all()
    ]


def experiment_replay_run(
    *, experiment: Experiment, progress: Progress | None = None
) -> dict[str, Any]:
    """Run the replay (the module's four steps); returns what it served and recorded, also kept
    in the experiment's ``replay``. Rerunning it replaces what an earlier run wrote."""
    if experiment.replay is None:
        raise ExperimentError("experiment", "not a replay: create one with a replay plan")
    report = progress or (lambda _: None)
    plan = ReplayPlan.from_dict(experiment.replay)
    started = perf_counter()
    _replay_update(experiment, status="running", error="")
    try:
        summary = _run(experiment, plan, report, started)
    except Exception as exc:
        # A failed replay leaves no half of its lists behind (its aggregates are written last).
        experiment_replay_rows_delete(experiment=experiment)
        _replay_update(experiment, status="failed", error=f"{type(exc).__name__}: {exc}")
        raise
    _replay_update(experiment, status="done", **summary)
    return summary


@dataclass
class _Served:
    """What the replayed visits were served and recorded."""

    shown: list[Shown]
    lists: list[selectors.LoggedList]
    actions: list[Action]
    missed: int = 0


def _run(
    experiment: Experiment, plan: ReplayPlan, report: Progress, started: float
) -> dict[str, Any]:
    experiment_replay_rows_delete(experiment=experiment)
    engine = engine_fit_before(before=plan.starts_at, progress=lambda f: report(0.35 * f))
    fitted = perf_counter()
    visits = visits_of(
        selectors.events_replayed(since=plan.starts_at, until=plan.ends_at),
        gap=plan.gap_minutes * 60,
    )
    customers = selectors.customers_by_external_id(ids={v.customer for v in visits})
    report(0.4)
    read = perf_counter()
    served = _serve(experiment, plan, engine, visits, customers, report)
    done = perf_counter()
    attributed = attribute(served.shown, served.actions, windows=attribution_windows())
    totals, daily, counts, _ = _tally(served.shown, served.lists, attributed)
    counts.update(
        unattributed=served.missed, unknown_ids=0, lists=len(served.shown),
        visitors=len(totals), replayed=1,
    )  # fmt: skip
    experiment_aggregates_write(
        experiment=experiment, totals=totals, daily=daily, attribution=counts, now=timezone.now()
    )
    report(1.0)
    kinds = [a.event_type for a in served.actions]
    tz = timezone.get_current_timezone()
    return {
        "engine": {
            "events": engine.events,
            "customers": engine.customers,
            "newest_event": datetime.fromtimestamp(engine.newest_event, tz=tz).isoformat(),
            "fit_seconds": engine.seconds,
            "collaborative": engine.collaborative,
            "reranker": (engine.reranker or {}).get(
                "verdict", "not learnt: the serving engine ranks by the linear blend"
            ),
        },
        "visits": len(visits),
        "customers": len(customers),
        "clicks": kinds.count("click"),
        "carts": kinds.count("add_to_cart"),
        "purchases": kinds.count("purchase"),
        "missed": served.missed,
        "seconds": round(perf_counter() - started, 1),
        # Where the time went: the fit (data read included), reading the replayed events,
        # serving the visits, and attributing and writing the aggregates.
        "timings": {
            "fit": round(fitted - started, 1),
            "events": round(read - fitted, 1),
            "serve": round(done - read, 1),
            "record": round(perf_counter() - done, 1),
        },
    }


def _serve(
    experiment: Experiment,
    plan: ReplayPlan,
    engine: EngineBefore,
    visits: Sequence[Visit],
    customers: Mapping[str, Customer],
    report: Progress,
) -> _Served:
    """Each visit's list from its variant, through the real service, and what it records."""
    variants = _variants_served(experiment)
    shares = [v.share for v in experiment.variants.all()]
    engines = [
        serving_with_variant(
            engine.serving,
            engine.fitted,
            config_version=v.config_version,
            popularity_only=v.baseline == "popularity",
        )
        for v in variants
    ]
    out = _Served(shown=[], lists=[], actions=[])
    tz = timezone.get_current_timezone()
    for start in range(0, len(visits), _BATCH):
        with transaction.atomic():
            for visit in visits[start : start + _BATCH]:
                index = assign(experiment.salt, visit.visitor, shares)
                variant = variants[index]
                at = datetime.fromtimestamp(visit.start, tz=tz)
                result = customer_recommendations(
                    customer=customers[visit.customer],
                    k=plan.k,
                    replay=Replayed(at=at, serving=engines[index], variant=variant),
                )
                rid = str(result.recommendation_id)
                product_ids = tuple(item.product.external_id for item in result.items)
                out.shown.append(Shown(rid, visit.visitor, variant.variant, visit.start,
                                       product_ids))  # fmt: skip
                out.lists.append(
                    selectors.LoggedList(rid, RecommendationKind.CUSTOMER, visit.customer, "",
                                         variant.variant, at, product_ids)
                )  # fmt: skip
                got = recorded(recommendation_id=rid, product_ids=product_ids, visit=visit)
                out.actions.extend(got.actions)
                out.missed += got.missed
        report(0.4 + 0.55 * min(start + _BATCH, len(visits)) / max(len(visits), 1))
    return out


def job_step_replay(job: Job, progress: Progress) -> Mapping[str, Any]:
    """The replay job's one step: the replay of the experiment in ``params``."""
    experiment = selectors.experiment_get(pk=int(job.params["experiment"]))
    if experiment is None:
        raise ExperimentError("experiment", f"no experiment has id {job.params['experiment']}")
    return experiment_replay_run(experiment=experiment, progress=progress)


# A/A calibration -----------------------------------------------------------------------------


def experiment_is_aa(experiment: Experiment) -> bool:
    """Whether every variant serves the same thing (configuration, baseline, rules)."""
    served = {(v.config_version, v.baseline, v.rules) for v in experiment.variants.all()}
    return len(served) == 1


def experiment_aa_calibration(
    *, experiment: Experiment, runs: int, seed: str = "aa", skew: tuple[int, int] = (45, 55)
) -> AaCalibration:
    """Re-split a replayed A/A experiment's visitors ``runs`` times and test each split with the
    experiment statistics (:func:`experiments.analysis.replay.aa_calibration`). Its variants
    must serve the same list (an A/A), and its replay must be done."""
    if not experiment_is_aa(experiment):
        raise ExperimentError(
            "variants", "an A/A calibration needs variants that all serve the same configuration"
        )
    if (experiment.replay or {}).get("status") != "done":
        raise ExperimentError("experiment", "replay it first: its replay has not finished")
    visitors = selectors.experiment_visitor_totals(experiment=experiment)
    return aa_calibration(
        visitors,
        columns=[column for column in selectors.METRIC_COLUMNS.values() if column != "filled"],
        runs=runs,
        seed=seed,
        skew=skew,
    )


def _served(field: str, text: str, *, name: str, share: int) -> VariantSpec:
    """A variant from the command line's ``active``, ``popularity``, ``none`` or ``vN``."""
    if text == "active":
        return VariantSpec(name, share)
    if text in ("popularity", "none"):
        return VariantSpec(name, share, baseline=text)
    if text.startswith("v") and text[1:].isdigit() and int(text[1:]) >= 1:
        return VariantSpec(name, share, int(text[1:]))
    raise ExperimentError(
        field,
        f"expected active, popularity, none or vN (a configuration version), not {text!r}",
    )


def experiment_replay_spec(
    *,
    name: str,
    treatment: str | None,
    control: str = "active",
    share: int = 50,
    primary_metric: str = "ctr",
    horizon_visitors: int = 1000,
) -> ExperimentSpec:
    """The specification of a two-variant replay made from the command line: the ``control``
    against the ``treatment``, each ``active`` (the active configuration), ``popularity`` or
    ``none`` (the baselines) or ``vN`` (configuration version N); the treatment takes ``share``
    percent. Without a treatment, an A/A: two variants, A and B, both serving the control."""
    if treatment is None:
        variants = [
            _served("control", control, name="A", share=100 - share),
            _served("control", control, name="B", share=share),
        ]
    else:
        variants = [
            _served("control", control, name="control", share=100 - share),
            _served("treatment", treatment, name=treatment, share=share),
        ]
    return ExperimentSpec(
        name=name,
        lists=[ExperimentList.CUSTOMER],
        variants=variants,
        starts_at=timezone.now(),
        primary_metric=primary_metric,
        horizon_visitors=horizon_visitors,
    )
