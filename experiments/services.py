"""Writes of experiments: create, change, start, stop, copy, promote; the serving path's
assigner (from a per-process cache); and the attribution run that writes the aggregates the
results are read from.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from jobs.models import Job
from jobs.registry import Progress
from recommender.caching import Reloading
from recommender.models import RecommendationConfig
from recommender.services.recommendations import recommendation_config_restore
from recommender.services.recommendations.variants import ServedVariant

from . import selectors
from .analysis.assignment import assign
from .analysis.attribution import COUNTED, Action, Attributed, Shown, Windows, attribute
from .models import (
    Baseline,
    DailyStats,
    Experiment,
    ExperimentList,
    ExperimentState,
    Metric,
    Variant,
    VisitorStats,
)

logger = logging.getLogger(__name__)

MAX_VARIANTS = 10
# Fields of an experiment that may change once it runs; every other one is fixed.
CHANGEABLE_WHILE_RUNNING = frozenset({"name", "description", "ends_at"})


class ExperimentError(ValueError):
    """A refused experiment change, naming the field. ``conflict``: refused because of the
    experiment's state or another running experiment (409), not the values (422)."""

    def __init__(self, field: str, message: str, *, conflict: bool = False) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.conflict = conflict


@dataclass(frozen=True, slots=True)
class VariantSpec:
    name: str
    share: int
    config_version: int | None = None
    baseline: str = ""
    rules: bool = True


@dataclass(slots=True)
class ExperimentSpec:
    name: str
    lists: list[str]
    variants: list[VariantSpec]
    starts_at: datetime
    ends_at: datetime | None = None
    primary_metric: str = Metric.CTR
    guardrails: list[dict[str, Any]] = field(default_factory=list)
    horizon_visitors: int = 1000
    description: str = ""


# Validation ----------------------------------------------------------------------------------


def _validate_variants(variants: Sequence[VariantSpec]) -> None:
    if len(variants) < 2:
        raise ExperimentError("variants", "an experiment needs a control and at least one more")
    if len(variants) > MAX_VARIANTS:
        raise ExperimentError("variants", f"at most {MAX_VARIANTS} variants")
    names = [v.name for v in variants]
    for i, v in enumerate(variants):
        if not v.name.strip():
            raise ExperimentError(f"variants[{i}].name", "a variant needs a name")
        if v.name in names[:i]:
            raise ExperimentError(f"variants[{i}].name", f"two variants are named {v.name!r}")
        if not 1 <= v.share <= 100:
            raise ExperimentError(f"variants[{i}].share", "a share is a whole percent, 1 to 100")
        if v.baseline not in Baseline.values:
            raise ExperimentError(
                f"variants[{i}].baseline", f"expected one of {sorted(Baseline.values)}"
            )
        if v.baseline and v.config_version is not None:
            raise ExperimentError(
                f"variants[{i}].config_version",
                "a baseline serves no configuration version: give one or the other",
            )
    total = sum(v.share for v in variants)
    if total != 100:
        raise ExperimentError("variants", f"the shares must sum to 100, not {total}")
    wanted = {v.config_version for v in variants if v.config_version is not None}
    missing = wanted - selectors.config_versions_existing(wanted)
    for i, v in enumerate(variants):
        if v.config_version in missing:
            raise ExperimentError(
                f"variants[{i}].config_version",
                f"no recommendation configuration has version {v.config_version}",
            )


def _validate(spec: ExperimentSpec) -> None:
    if not spec.name.strip():
        raise ExperimentError("name", "an experiment needs a name")
    if not spec.lists:
        raise ExperimentError("lists", "name at least one list")
    for kind in spec.lists:
        if kind not in ExperimentList.values:
            raise ExperimentError(
                "lists", f"{kind!r} is not a list (expected {sorted(ExperimentList.values)})"
            )
    if len(set(spec.lists)) != len(spec.lists):
        raise ExperimentError("lists", "a list is named twice")
    if spec.ends_at is not None and spec.ends_at <= spec.starts_at:
        raise ExperimentError("ends_at", "the end must come after the start")
    if spec.primary_metric not in Metric.values:
        raise ExperimentError("primary_metric", f"expected one of {sorted(Metric.values)}")
    for i, g in enumerate(spec.guardrails):
        if g.get("metric") not in Metric.values:
            raise ExperimentError(
                f"guardrails[{i}].metric", f"expected one of {sorted(Metric.values)}"
            )
        drop = g.get("max_drop_pct")
        if isinstance(drop, bool) or not isinstance(drop, int | float) or not 0 <= drop <= 100:
            raise ExperimentError(f"guardrails[{i}].max_drop_pct", "a percent from 0 to 100")
    if spec.horizon_visitors < 1:
        raise ExperimentError("horizon_visitors", "at least 1")
    _validate_variants(spec.variants)


def _guardrails(raw: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [{"metric": g.get("metric"), "max_drop_pct": g.get("max_drop_pct")} for g in raw]


# Writes --------------------------------------------------------------------------------------


def _write_variants(experiment: Experiment, variants: Sequence[VariantSpec]) -> None:
    experiment.variants.all().delete()
    Variant.objects.bulk_create(
        Variant(
            experiment=experiment,
            name=v.name,
            position=i,
            share=v.share,
            config_version=v.config_version,
            baseline=v.baseline,
            rules=v.rules,
        )
        for i, v in enumerate(variants)
    )


def _name_taken(name: str, *, pk: int | None = None) -> bool:
    same = Experiment.objects.filter(name=name)
    return (same.exclude(pk=pk) if pk is not None else same).exists()


def experiment_create(
    *,
    spec: ExperimentSpec,
    created_by: object = None,
    copied_from: Experiment | None = None,
) -> Experiment:
    """A new draft experiment; nothing is saved when a value is refused."""
    spec.guardrails = _guardrails(spec.guardrails)
    _validate(spec)
    if _name_taken(spec.name):
        raise ExperimentError("name", f"an experiment named {spec.name!r} exists")
    try:
        with transaction.atomic():
            experiment = Experiment.objects.create(
                name=spec.name,
                description=spec.description,
                lists=list(spec.lists),
                starts_at=spec.starts_at,
                ends_at=spec.ends_at,
                primary_metric=spec.primary_metric,
                guardrails=spec.guardrails,
                horizon_visitors=spec.horizon_visitors,
                copied_from=copied_from,
                created_by=created_by if isinstance(created_by, User) else None,
            )
            _write_variants(experiment, spec.variants)
    except IntegrityError as exc:  # The same name created at the same moment.
        raise ExperimentError("name", f"an experiment named {spec.name!r} exists") from exc
    return experiment


def _spec_of(experiment: Experiment) -> ExperimentSpec:
    return ExperimentSpec(
        name=experiment.name,
        lists=list(experiment.lists),
        variants=[
            VariantSpec(v.name, v.share, v.config_version, v.baseline, v.rules)
            for v in experiment.variants.all()
        ],
        starts_at=experiment.starts_at,
        ends_at=experiment.ends_at,
        primary_metric=experiment.primary_metric,
        guardrails=list(experiment.guardrails),
        horizon_visitors=experiment.horizon_visitors,
        description=experiment.description,
    )


def experiment_update(*, experiment: Experiment, changes: Mapping[str, Any]) -> Experiment:
    """Change the fields in ``changes`` (``variants`` as :class:`VariantSpec` items). A running
    or stopped experiment only changes its name, description and end (409 otherwise: stop it
    and copy it)."""
    if experiment.state != ExperimentState.DRAFT:
        for name in changes:
            if name not in CHANGEABLE_WHILE_RUNNING:
                raise ExperimentError(
                    name,
                    f"a {experiment.state} experiment's {name} cannot change: only its name, "
                    "description and end can; stop it and copy it to change the rest",
                    conflict=True,
                )
    spec = _spec_of(experiment)
    for name, value in changes.items():
        setattr(spec, name, _guardrails(value) if name == "guardrails" else value)
    _validate(spec)
    if _name_taken(spec.name, pk=experiment.pk):
        raise ExperimentError("name", f"an experiment named {spec.name!r} exists")
    with transaction.atomic():
        locked = Experiment.objects.select_for_update().get(pk=experiment.pk)
        if locked.state != experiment.state:
            raise ExperimentError("state", f"the experiment is {locked.state} now", conflict=True)
        for name in (
            "name", "description", "lists", "starts_at", "ends_at", "primary_metric",
            "guardrails", "horizon_visitors",
        ):  # fmt: skip
            setattr(locked, name, getattr(spec, name))
        locked.save()
        if "variants" in changes:
            _write_variants(locked, spec.variants)
    experiments_running_recheck()
    fresh = selectors.experiment_get(pk=experiment.pk)
    assert fresh is not None
    return fresh


def experiment_start(*, experiment: Experiment) -> Experiment:
    """Draft -> running. Refused (409) when another running experiment covers one of its lists
    (two experiments must not claim the same visitors on the same list)."""
    with transaction.atomic():
        # Starts are serialised, so two cannot both pass the overlap check.
        locked = Experiment.objects.select_for_update().get(pk=experiment.pk)
        list(Experiment.objects.select_for_update().filter(state=ExperimentState.RUNNING))
        if locked.state != ExperimentState.DRAFT:
            raise ExperimentError(
                "state", f"only a draft can start; this one is {locked.state}", conflict=True
            )
        others = selectors.experiments_running_on(lists=locked.lists, exclude_pk=locked.pk)
        if others:
            raise ExperimentError(
                "lists",
                f"{', '.join(repr(n) for n in others)} already runs on "
                f"{'/'.join(locked.lists)} lists; stop it first",
                conflict=True,
            )
        locked.state = ExperimentState.RUNNING
        locked.started_at = timezone.now()
        locked.save(update_fields=["state", "started_at"])
    experiments_running_recheck()
    fresh = selectors.experiment_get(pk=experiment.pk)
    assert fresh is not None
    return fresh


def experiment_stop(*, experiment: Experiment) -> Experiment:
    """Running -> stopped: its visitors get the active configuration again."""
    with transaction.atomic():
        locked = Experiment.objects.select_for_update().get(pk=experiment.pk)
        if locked.state != ExperimentState.RUNNING:
            raise ExperimentError(
                "state", f"only a running experiment can stop; this one is {locked.state}",
                conflict=True,
            )  # fmt: skip
        locked.state = ExperimentState.STOPPED
        locked.stopped_at = timezone.now()
        locked.save(update_fields=["state", "stopped_at"])
    experiments_running_recheck()
    fresh = selectors.experiment_get(pk=experiment.pk)
    assert fresh is not None
    return fresh


def experiment_copy(
    *,
    experiment: Experiment,
    name: str | None = None,
    created_by: object = None,
) -> Experiment:
    """A draft with the same settings and variants (and a new salt, so a new assignment)."""
    spec = _spec_of(experiment)
    if name is None:
        # The name column holds 200 characters: a long name is shortened to fit the suffix.
        base = experiment.name[:180]
        name = f"{base} (copy)"
        n = 2
        while _name_taken(name):
            name = f"{base} (copy {n})"
            n += 1
    spec.name = name
    if experiment.replay is not None:
        # A replay covered days in the past: its live copy starts now, without an end.
        spec.starts_at, spec.ends_at = timezone.now(), None
    if spec.ends_at is not None and spec.ends_at <= spec.starts_at:
        spec.ends_at = None
    return experiment_create(spec=spec, created_by=created_by, copied_from=experiment)


def experiment_promote(
    *, experiment: Experiment, variant: str, created_by: User | None = None
) -> RecommendationConfig:
    """Make ``variant``'s configuration version the active configuration (as a new version)."""
    chosen = next((v for v in experiment.variants.all() if v.name == variant), None)
    if chosen is None:
        raise ExperimentError("variant", f"the experiment has no variant {variant!r}")
    if chosen.config_version is None:
        raise ExperimentError(
            "variant",
            f"{variant!r} serves {'a baseline' if chosen.baseline else 'the active configuration'}"
            ": there is no configuration version to promote",
        )
    return recommendation_config_restore(version=chosen.config_version, created_by=created_by)


# Serving: the assigner -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Running:
    experiment_id: int
    lists: frozenset[str]
    salt: str
    starts: float
    ends: float | None
    shares: tuple[int, ...]
    variants: tuple[ServedVariant, ...]


def _running_loaded(_: tuple[_Running, ...] | None) -> tuple[_Running, ...]:
    return tuple(
        _Running(
            experiment_id=e.pk,
            lists=frozenset(e.lists),
            salt=e.salt,
            starts=e.starts_at.timestamp(),
            ends=e.ends_at.timestamp() if e.ends_at else None,
            shares=tuple(v.share for v in e.variants.all()),
            variants=tuple(
                ServedVariant(
                    experiment_id=e.pk,
                    variant=v.name,
                    config_version=v.config_version,
                    baseline=v.baseline,  # type: ignore[arg-type]
                    rules=v.rules,
                )
                for v in e.variants.all()
            ),
        )
        for e in selectors.experiments_running()
    )


_running: Reloading[None, tuple[_Running, ...]] = Reloading(
    lambda: float(settings.RECSITE_EXPERIMENTS_REFRESH_SECONDS), max_entries=1
)


def experiment_variant_for(kind: str, visitor: str) -> ServedVariant | None:
    """The variant serving ``visitor`` on a ``kind`` list (registered with recommender's
    serving path). Answered from memory: the running experiments are reloaded at most every
    ``RECSITE_EXPERIMENTS_REFRESH_SECONDS``; nothing is written."""
    running = _running.get(None, _running_loaded) or ()
    if not running:
        return None
    now = timezone.now().timestamp()
    for e in running:
        if kind in e.lists and e.starts <= now and (e.ends is None or now < e.ends):
            return e.variants[assign(e.salt, visitor, e.shares)]
    return None


def experiments_running_recheck() -> None:
    """This process reads the running experiments again at its next list (after a change
    here; other processes follow within the refresh)."""
    _running.recheck()


def experiments_running_reset() -> None:
    """Forget the cached running experiments (tests)."""
    _running.forget()


# Attribution run -----------------------------------------------------------------------------


def attribution_windows() -> Windows:
    return Windows(
        click=float(settings.RECSITE_ATTRIBUTION_CLICK_HOURS) * 3600,
        purchase=float(settings.RECSITE_ATTRIBUTION_PURCHASE_DAYS) * 86400,
    )


def _visitor(customer: str | None, session_id: str) -> str:
    """The visitor a logged list was assigned by: its customer, else its anonymous session
    (session lists, and product lists that named only a session)."""
    return f"c:{customer}" if customer else f"s:{session_id}"


_COLUMNS = ("impressions", "filled", "clicks", "carts", "purchases", "revenue")


def experiment_refresh_check(*, experiment: Experiment) -> None:
    """Refuse (409) to attribute real events to a replay: its clicks and purchases are the ones
    its replay recorded (simulated traffic), which real events must not replace."""
    if experiment.replay is not None:
        raise ExperimentError(
            "experiment",
            "this is a replay of past traffic: its results are written by the replay "
            "(manage.py simulate_traffic), not by attribution of real events",
            conflict=True,
        )


def experiment_results_refresh(
    *, experiment: Experiment, now: datetime | None = None, progress: Progress | None = None
) -> dict[str, int]:
    """Attribute the events to the experiment's served lists (``attribution``'s two rules) and
    write its per-visitor and per-day aggregates, replacing the last run's in one transaction.
    Returns what was counted (also kept on the experiment for its page). A replay's results
    are its replay's (:class:`ExperimentError` here)."""
    experiment_refresh_check(experiment=experiment)
    now = now or timezone.now()
    windows = attribution_windows()
    lists = list(selectors.experiment_logged_lists(experiment=experiment))
    shown = [
        Shown(
            recommendation_id=row.recommendation_id,
            visitor=_visitor(row.customer, row.session_id),
            variant=row.variant,
            at=row.created_at.timestamp(),
            product_ids=row.product_ids,
        )
        for row in lists
    ]
    if progress is not None:
        progress(0.3)
    events = []
    if lists:
        customers = sorted({row.customer for row in lists if row.customer})
        sessions = sorted({row.session_id for row in lists if row.session_id})
        until = min(now, lists[-1].created_at + timedelta(seconds=windows.purchase))
        events = selectors.experiment_candidate_events(
            customers=customers,
            sessions=sessions,
            recommendation_ids=[row.recommendation_id for row in lists],
            since=lists[0].created_at,
            until=until,
        )
    actions = [
        Action(
            event_id=e.event_id,
            visitors=(f"c:{e.customer}", f"s:{e.session_id}")
            if e.session_id
            else (f"c:{e.customer}",),
            product_id=e.product,
            event_type=e.event_type,
            at=e.occurred_at.timestamp(),
            revenue=e.value if e.event_type == "purchase" else 0.0,
            recommendation_id=e.recommendation_id,
        )
        for e in events
    ]
    attributed = attribute(shown, actions, windows=windows)
    if progress is not None:
        progress(0.6)
    totals, daily, counts, sent_ids = _tally(shown, lists, attributed)
    unknown = selectors.recommendation_ids_unknown(ids=sent_ids) if sent_ids else set()
    counts["unknown_ids"] = sum(1 for rid in sent_ids if rid in unknown)
    counts["lists"] = len(shown)
    counts["visitors"] = len(totals)
    experiment_aggregates_write(
        experiment=experiment,
        totals=totals,
        daily=daily,
        attribution={
            **counts,
            "click_window_hours": windows.click / 3600,
            "purchase_window_days": windows.purchase / 86400,
        },
        now=now,
    )
    if progress is not None:
        progress(1.0)
    return {k: int(v) for k, v in counts.items()}


def experiment_aggregates_write(
    *,
    experiment: Experiment,
    totals: Mapping[tuple[str, str], Mapping[str, float]],
    daily: Mapping[tuple[str, str, Any], Mapping[str, float]],
    attribution: Mapping[str, Any],
    now: datetime,
) -> None:
    """Replace the experiment's per-visitor and per-day aggregates (``_tally``'s output) and
    what was counted, in one transaction: what its results are read from."""
    days = _daily_rows(experiment, daily)
    with transaction.atomic():
        VisitorStats.objects.filter(experiment=experiment).delete()
        DailyStats.objects.filter(experiment=experiment).delete()
        VisitorStats.objects.bulk_create(
            (
                VisitorStats(
                    experiment=experiment,
                    variant=variant,
                    visitor=visitor,
                    impressions=int(t["impressions"]),
                    filled=int(t["filled"]),
                    clicks=int(t["clicks"]),
                    carts=int(t["carts"]),
                    purchases=int(t["purchases"]),
                    revenue=Decimal(str(round(t["revenue"], 2))),
                )
                for (variant, visitor), t in totals.items()
            ),
            batch_size=2000,
        )
        DailyStats.objects.bulk_create(days, batch_size=2000)
        experiment.results_at = now
        experiment.attribution = dict(attribution)
        experiment.save(update_fields=["results_at", "attribution"])


def _tally(
    shown: Sequence[Shown],
    lists: Sequence[selectors.LoggedList],
    attributed: Sequence[Attributed],
) -> tuple[
    dict[tuple[str, str], dict[str, float]],
    dict[tuple[str, str, Any], dict[str, float]],
    dict[str, int],
    list[str],
]:
    """Per visitor, and per visitor and day (the day of the list): impressions, filled lists
    and the attributed events; what each rule counted; the ids sent that matched no list."""
    totals: dict[tuple[str, str], dict[str, float]] = defaultdict(
        lambda: dict.fromkeys(_COLUMNS, 0.0)
    )
    daily: dict[tuple[str, str, Any], dict[str, float]] = defaultdict(
        lambda: dict.fromkeys(_COLUMNS, 0.0)
    )
    tz = timezone.get_current_timezone()
    day_of = {
        s.recommendation_id: row.created_at.astimezone(tz).date()
        for s, row in zip(shown, lists, strict=True)
    }
    for s in shown:
        for bucket in (
            totals[(s.variant, s.visitor)],
            daily[(s.variant, s.visitor, day_of[s.recommendation_id])],
        ):
            bucket["impressions"] += 1
            bucket["filled"] += 1 if s.product_ids else 0
    counts = {"explicit": 0, "window": 0, "unattributed": 0, "unknown_ids": 0}
    sent_ids = []
    for a in attributed:
        if a.shown is None:
            counts["unattributed"] += 1
            if a.action.recommendation_id:
                sent_ids.append(a.action.recommendation_id)
            continue
        counts[a.rule] += 1
        s = a.shown
        column = COUNTED[a.action.event_type]
        for bucket in (
            totals[(s.variant, s.visitor)],
            daily[(s.variant, s.visitor, day_of[s.recommendation_id])],
        ):
            bucket[column] += 1
            if column == "purchases":
                bucket["revenue"] += a.action.revenue
    return totals, daily, counts, sent_ids


def _daily_rows(
    experiment: Experiment, daily: Mapping[tuple[str, str, Any], Mapping[str, float]]
) -> list[DailyStats]:
    """Per variant and day: visitors, impressions and each metric's per-visitor sums."""
    grouped: dict[tuple[str, Any], list[Mapping[str, float]]] = defaultdict(list)
    for (variant, _, day), t in daily.items():
        grouped[(variant, day)].append(t)
    rows = []
    for (variant, day), visitors in sorted(
        grouped.items(), key=lambda item: (item[0][1], item[0][0])
    ):
        sums = {}
        for metric, column in selectors.METRIC_COLUMNS.items():
            sums[metric] = [
                len(visitors),
                sum(t["impressions"] for t in visitors),
                sum(t["impressions"] ** 2 for t in visitors),
                sum(t[column] for t in visitors),
                sum(t[column] ** 2 for t in visitors),
                sum(t[column] * t["impressions"] for t in visitors),
            ]
        rows.append(
            DailyStats(
                experiment=experiment,
                variant=variant,
                day=day,
                visitors=len(visitors),
                impressions=int(sum(t["impressions"] for t in visitors)),
                sums=sums,
            )
        )
    return rows


# Jobs ----------------------------------------------------------------------------------------


def job_step_results(job: Job, progress: Progress) -> Mapping[str, Any]:
    """The results job's one step: an attribution run of the experiment in ``params``, or of
    every running one."""
    pk = job.params.get("experiment")
    targets = (
        [e for e in [selectors.experiment_get(pk=int(pk))] if e is not None]
        if pk is not None
        else selectors.experiments_running()
    )
    done = {}
    for experiment in targets:
        done[str(experiment.pk)] = experiment_results_refresh(experiment=experiment)
    progress(1.0)
    return {"experiments": len(done)}
