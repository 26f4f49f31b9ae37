"""System checks of the privacy settings (``manage.py check``, and every process at start)."""

from typing import Any

from django.conf import settings
from django.core.checks import Error, register


@register()
def pseudonymous_ids_have_a_key(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    keys = [k for k in settings.RECSITE_ID_KEY.split(",") if k.strip()]
    if settings.RECSITE_PSEUDONYMOUS_IDS and not keys:
        return [
            Error(
                "RECSITE_PSEUDONYMOUS_IDS=1 needs RECSITE_ID_KEY (a secret key; docs/privacy.md)",
                id="privacy.E001",
            )
        ]
    if settings.RECSITE_FORGET_DEADLINE_HOURS <= 0:
        return [Error("RECSITE_FORGET_DEADLINE_HOURS must be positive", id="privacy.E002")]
    return []


@register()
def aggregate_settings_are_valid(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """The shareable reports' settings (docs/privacy.md, "Privacy-safe aggregates")."""
    problems = []
    if settings.RECSITE_AGGREGATE_K < 2:
        problems.append("RECSITE_AGGREGATE_K must be at least 2 (a group of 1 is a person)")
    if not settings.RECSITE_AGGREGATE_EPSILON > 0:
        problems.append("RECSITE_AGGREGATE_EPSILON must be positive")
    if settings.RECSITE_AGGREGATE_EPSILON_BUDGET < 0:
        problems.append("RECSITE_AGGREGATE_EPSILON_BUDGET must be 0 (no limit) or positive")
    budget = settings.RECSITE_AGGREGATE_EPSILON_BUDGET
    if budget > 0 and budget < settings.RECSITE_AGGREGATE_EPSILON:
        problems.append(
            "RECSITE_AGGREGATE_EPSILON is above RECSITE_AGGREGATE_EPSILON_BUDGET: no report "
            "with noise could ever be released"
        )
    if settings.RECSITE_AGGREGATE_BUDGET_DAYS < 1:
        problems.append("RECSITE_AGGREGATE_BUDGET_DAYS must be at least 1")
    if not settings.RECSITE_AGGREGATE_REVENUE_CLIP > 0:
        problems.append("RECSITE_AGGREGATE_REVENUE_CLIP must be positive")
    if settings.RECSITE_AGGREGATE_MAX_CATEGORIES < 1:
        problems.append("RECSITE_AGGREGATE_MAX_CATEGORIES must be at least 1")
    return [Error(message, id="privacy.E003") for message in problems]
