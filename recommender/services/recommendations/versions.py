"""Recommendation configuration versions: the active one, saving a new one, restoring an old one.

A version is never edited, so the history says what served when. Its request-time fields apply
to the serving engine at once (``serving``); its fit-time fields at the next fit (``fitting``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Max

from recommender.ml.engine import EngineConfig
from recommender.models import RecommendationConfig


def recommendation_config_active() -> RecommendationConfig:
    """The active configuration; version 1 (the engine's defaults) is created on first use."""
    active = RecommendationConfig.objects.filter(is_active=True).first()
    if active is not None:
        return active
    with transaction.atomic():
        newest = RecommendationConfig.objects.select_for_update().order_by("-version").first()
        if newest is not None:
            # Unreachable through these services; a hand-edited table still gets one active.
            newest.is_active = True
            newest.save(update_fields=["is_active"])
            return newest
        try:
            with transaction.atomic():
                return RecommendationConfig.objects.create(
                    version=1,
                    config=EngineConfig().to_dict(),
                    note="defaults",
                    is_active=True,
                )
        except IntegrityError:
            # Another process created version 1 at the same moment.
            return RecommendationConfig.objects.get(is_active=True)


class ConfigChanged(Exception):
    """The active configuration is no longer the one a save meant to replace."""


def recommendation_config_save(
    *,
    config: EngineConfig | Mapping[str, Any],
    created_by: User | None = None,
    note: str = "",
    locked: Sequence[str] | None = None,
    tuning: Mapping[str, Any] | None = None,
    replaces: int | None = None,
    activate: bool = True,
) -> RecommendationConfig:
    """Store ``config`` as a new version and make it the active one (with ``activate=False``,
    a version that does not serve: one for an experiment's variant to test first).

    A mapping is validated by :meth:`EngineConfig.from_dict` (a ``ConfigError`` names the bad
    field). Versions are never edited, so the history says what served when. ``locked`` (the
    settings automatic tuning leaves alone) carries over from the active version unless given.
    With ``replaces``, the save happens only while that version is still the active one
    (automatic tuning must not overwrite a merchandiser's save made while it ran): otherwise
    :class:`ConfigChanged` is raised and nothing is written.
    """
    engine_config = config if isinstance(config, EngineConfig) else EngineConfig.from_dict(config)
    recommendation_config_active()  # Version 1 exists before any later one.
    with transaction.atomic():
        # Locking the active row serialises concurrent saves.
        active = list(RecommendationConfig.objects.select_for_update().filter(is_active=True))
        if replaces is not None and (not active or active[0].version != replaces):
            now = active[0].version if active else None
            raise ConfigChanged(f"version {replaces} is no longer the active one (now {now})")
        last = RecommendationConfig.objects.aggregate(last=Max("version"))["last"] or 0
        if activate:
            RecommendationConfig.objects.filter(is_active=True).update(is_active=False)
        row = RecommendationConfig.objects.create(
            version=last + 1,
            config=engine_config.to_dict(),
            note=note,
            created_by=created_by,
            is_active=activate,
            locked=list(locked) if locked is not None else (active[0].locked if active else []),
            tuning=dict(tuning) if tuning is not None else None,
        )
    if activate:
        # This process serves the new version from its next request. Imported here: the
        # serving cache reads the active version, so it depends on this module, not the reverse.
        from .serving import serving_engine_recheck

        serving_engine_recheck()
    return row


def recommendation_config_restore(
    *, version: int, created_by: User | None = None
) -> RecommendationConfig:
    """Make an earlier version's configuration active again, as a new version."""
    old = RecommendationConfig.objects.filter(version=version).first()
    if old is None:
        raise ValueError(f"version: no recommendation configuration has version {version}")
    return recommendation_config_save(
        config=old.config, created_by=created_by, note=f"restored from version {version}"
    )


def recommendation_config_untuned(row: RecommendationConfig) -> RecommendationConfig:
    """The version automatic tuning started from when it produced ``row``, followed back to
    one saved by hand (``row`` itself when it was). Evaluating the tuning procedure starts
    there: a tuned version has seen every customer's last product, the evaluation's test item."""
    seen = {row.version}
    while row.tuning and row.tuning.get("replaced_version") is not None:
        earlier = RecommendationConfig.objects.filter(
            version=row.tuning["replaced_version"]
        ).first()
        if earlier is None or earlier.version in seen:
            break
        seen.add(earlier.version)
        row = earlier
    return row


def engine_config_active() -> tuple[int, EngineConfig]:
    row = recommendation_config_active()
    return row.version, EngineConfig.from_dict(row.config)
