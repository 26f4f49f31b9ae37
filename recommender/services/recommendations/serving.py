"""The serving cache: the engine this process serves, the newest READY build with the active
configuration version applied, loaded once per process and rechecked every
``RECSITE_INDEX_REFRESH_SECONDS`` so a new fit or a saved version serves without a restart.
The newest sequential build (when enabled) is read by the same query and served as the engine's
``sequential`` source.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace

from django.conf import settings

from jobs.services.artifact_store import ArtifactStoreError
from jobs.services.artifacts import artifact_local
from recommender.caching import Reloading
from recommender.ml.engine import (
    EXACT_SEARCH_MAX,
    AnnSearch,
    ConfigError,
    EngineConfig,
    HybridEngine,
)
from recommender.models import EngineBuild, RecommendationConfig
from recommender.ranking.types import SOURCES
from recommender.selectors.tuning import engine_build_serving, sequential_location_of

from ..index import serving_index
from ..sequential import HeldSequential, sequential_serving_reload
from ..serving_mode import serving_forgotten, serving_keep_inherited, serving_noted
from .fitting import ENGINE_KIND
from .versions import recommendation_config_active

logger = logging.getLogger(__name__)

# As for the index: a newer build that cannot be loaded leaves the loaded one serving.
_LOAD_ERRORS = (ArtifactStoreError, OSError, ValueError)


class EngineNotReady(Exception):
    """No engine has been fitted yet: recommendations need one (``manage.py train``)."""

    def __init__(self) -> None:
        super().__init__(
            "No recommendation engine has been fitted yet: run `manage.py train` "
            "or POST /api/v1/jobs/train."
        )


@dataclass(frozen=True, slots=True)
class ServingEngine:
    """The engine that serves now: the newest READY build with the active configuration."""

    build_id: int
    path: str
    model_name: str
    # The active configuration version, whose request-time fields this engine applies (see
    # HybridEngine.with_config); it is what RecommendationLog records.
    config_version: int
    engine: HybridEngine
    fitted_at: float
    # The version the build was fitted with, and the fit-time fields the active version
    # changes since then (they take effect at the next fit).
    fit_config_version: int
    pending_fit_fields: tuple[str, ...]
    # The sequential build served as the engine's ``sequential`` source (its location), if any.
    sequential_location: str | None = None


@dataclass(frozen=True, slots=True)
class _Held:
    """What this process holds: the loaded build as fitted (its row, local path, engine), and
    the engine that serves, that build with the active configuration version applied."""

    build: EngineBuild
    path: str
    fitted: HybridEngine
    serving: ServingEngine
    # The sequential model served with it (recommender.services.sequential), if any.
    sequential: HeldSequential | None
    # (build location, active version, sequential build location) behind ``serving``.
    key: tuple[str, int, str | None]


# One value, checked every RECSITE_INDEX_REFRESH_SECONDS.
_held: Reloading[None, _Held] = Reloading(
    lambda: settings.RECSITE_INDEX_REFRESH_SECONDS, max_entries=1
)


def serving_engine() -> ServingEngine:
    """The newest READY engine build with the active configuration applied, loaded once per
    process. A newer build and a newly saved configuration version are both picked up, checked
    at most every ``RECSITE_INDEX_REFRESH_SECONDS`` (one small query; none in between).

    The configuration's request-time fields apply at once, without a refit (a shallow copy of
    the fitted engine, made once per build and version); its fit-time fields wait for the next
    fit (``pending_fit_fields``). Raises :class:`EngineNotReady` when no build exists. A gunicorn
    worker that inherited its build from the master keeps it until the master rolls a newer one
    in (``serving_mode``); a newer build that cannot be loaded leaves the loaded one serving.
    """
    held = _held.get(None, _reloaded)
    if held is None:
        raise EngineNotReady()
    return held.serving


def _reloaded(held: _Held | None) -> _Held | None:
    """``held`` with the build to serve and the active version applied, each loaded only when
    it changed; None when no build exists."""
    build, version = engine_build_serving()
    if build is None:
        serving_forgotten(ENGINE_KIND)
        return None
    if held is not None and serving_keep_inherited(
        ENGINE_KIND, current=held.build.pk, newest=build.pk
    ):
        build = held.build
    # Keyed by location, which is unique per build: a reused primary key (SQLite after a
    # rollback) never serves another build's engine.
    if held is None or held.build.path != build.path:
        try:
            local = artifact_local(model=EngineBuild, kind=ENGINE_KIND, location=build.path)
            loaded = (build, str(local), HybridEngine.load(local))
        except _LOAD_ERRORS:
            if held is None:
                raise
            logger.exception("Cannot load engine build %s; build %s keeps serving",
                             build.pk, held.build.pk)  # fmt: skip
            build = held.build
            loaded = (held.build, held.path, held.fitted)
        else:
            serving_noted(ENGINE_KIND, build.pk)
            logger.info("Loaded engine build %s (fitted with config v%d)", build.pk,
                        build.config_version)  # fmt: skip
    else:
        loaded = (held.build, held.path, held.fitted)
    # The row that serves is this check's (the loaded one is kept only for its file).
    path, fitted = loaded[1], loaded[2]
    sequential = sequential_serving_reload(
        location=sequential_location_of(build), held=held.sequential if held else None
    )
    sequential_at = sequential[0] if sequential else None
    if (
        held is not None
        and version is not None
        and held.key == (build.path, version, sequential_at)
    ):
        serving = held.serving
        key = held.key
    else:
        active = recommendation_config_active()  # Read in full only when it changed.
        serving = _serving_with(build=build, path=path, fitted=fitted, active=active)
        if sequential is not None:
            serving = replace(
                serving,
                engine=serving.engine.with_sequential(sequential[1]),
                sequential_location=sequential[0],
            )
        key = (build.path, active.version, sequential_at)
        # What its requests derive, built here: in a gunicorn master before it forks.
        serving.engine.prepare()
    return _Held(
        build=loaded[0], path=path, fitted=fitted, serving=serving, sequential=sequential, key=key
    )


def _serving_with(
    *, build: EngineBuild, path: str, fitted: HybridEngine, active: RecommendationConfig
) -> ServingEngine:
    try:
        config = EngineConfig.from_dict(active.config)
    except ConfigError:
        # Only a hand-edited row can be invalid (the services validate): keep the fit's.
        logger.exception("Config v%d is invalid; serving build %s as fitted", active.version,
                         build.pk)  # fmt: skip
        config, version = fitted.config, build.config_version
    else:
        version = active.version
    engine = fitted.with_config(config)
    if engine.pending_fit_fields:
        logger.info("Config v%d: %s take effect at the next fit", version,
                    ", ".join(engine.pending_fit_fields))  # fmt: skip
    logger.info("Serving engine build %s with config v%d", build.pk, version)
    return ServingEngine(
        build_id=build.pk,
        # The local file (in the artifact cache for object storage): the tuning sample is
        # saved beside it.
        path=path,
        model_name=build.model_name,
        config_version=version,
        engine=engine,
        fitted_at=float(fitted.fitted_at or time.time()),
        fit_config_version=build.config_version,
        pending_fit_fields=engine.pending_fit_fields,
    )


# Engines of experiment variants: (build location, configuration version or None for the active
# one, popularity only) -> the loaded build with that configuration applied. Versions are never
# edited and the build location is in the key, so an entry never goes stale; the bound keeps
# old builds' entries from piling up.
_variants: Reloading[tuple[str, int | None, bool], ServingEngine] = Reloading(
    lambda: float("inf"), max_entries=32
)


def serving_engine_variant(*, config_version: int | None, popularity_only: bool) -> ServingEngine:
    """The serving engine with configuration ``config_version``'s request-time fields applied
    instead of the active version's (an experiment's variant), and with ``popularity_only``
    the popularity source alone (the "popularity only" baseline). Made once per build and
    version (a shallow copy, as for the active version); the serving engine itself when
    neither changes anything. A version that does not exist serves the active one.
    """
    base = serving_engine()
    if not popularity_only and config_version in (None, base.config_version):
        return base
    held = _held.held(None)
    if held is None or held.path != base.path:
        return base  # Another thread is swapping builds: this request keeps the serving one.

    def made(old: ServingEngine | None) -> ServingEngine:
        if old is not None:
            return old
        return serving_with_variant(
            base, held.fitted, config_version=config_version, popularity_only=popularity_only
        )

    engine = _variants.get((base.path, config_version, popularity_only), made)
    assert engine is not None  # ``made`` always gives one.
    return engine


def serving_with_variant(
    base: ServingEngine,
    fitted: HybridEngine,
    *,
    config_version: int | None,
    popularity_only: bool,
) -> ServingEngine:
    """``base``, whose engine is ``fitted`` with a configuration applied, serving configuration
    ``config_version``'s request-time fields instead (None: ``base``'s own), and with
    ``popularity_only`` the popularity source alone: an experiment variant's engine, for the
    serving cache above and for the replay simulator's engine fitted in memory. A version that
    does not exist, or cannot be read, serves ``base``'s configuration."""
    version, config = base.config_version, base.engine.config
    if config_version is not None and config_version != base.config_version:
        row = RecommendationConfig.objects.filter(version=config_version).first()
        if row is None:
            logger.warning("Config v%d does not exist; the active one serves", config_version)
        else:
            try:
                version, config = row.version, EngineConfig.from_dict(row.config)
            except ConfigError:
                logger.exception("Config v%d is invalid; the active one serves", row.version)
    if popularity_only:
        config = replace(
            config,
            source_weights={name: 1.0 if name == "popularity" else 0.0 for name in SOURCES},
        )
    engine = fitted.with_config(config)
    return replace(
        base, config_version=version, engine=engine, pending_fit_fields=engine.pending_fit_fields
    )


def serving_engine_recheck() -> None:
    """Make this process's next :func:`serving_engine` call look for a new build and version
    at once (after saving a configuration here; other processes follow within the refresh)."""
    _held.recheck()


def serving_engine_reset() -> None:
    """Forget the loaded engine (tests)."""
    _variants.forget()
    _held.forget(then=lambda: serving_forgotten(ENGINE_KIND))


def serving_ann(serving: ServingEngine) -> AnnSearch | None:
    """The serving vector index as the engine's ``ann`` hook: the semantic source's first stage
    (and the session's), a bounded graph search whatever the catalogue size. It also holds the
    products embedded after the fit (its side buffer), so they are recommendable at once.

    None (the engine then searches its own vectors exactly) only while no index holds anything
    and the catalogue is small enough for an exact search (``EXACT_SEARCH_MAX``).
    """
    index = serving_index(model_name=serving.model_name)
    if index.buffer is None and serving.engine.n_items <= EXACT_SEARCH_MAX:
        return None
    return index
