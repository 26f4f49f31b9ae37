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
