"""Authentication backends: django-axes' lockout check in front of Django's password check."""

from typing import Any

from axes.backends import AxesStandaloneBackend
from django.http import HttpRequest


class LoginLockoutBackend(AxesStandaloneBackend):
    """Refuses a locked-out login (``AXES_*`` settings) before any password is checked.

    Only a login through a web page has an address and a request to count: an ``authenticate()``
    without a request (a command checking a password) passes on to the password check, where
    django-axes' own backend would raise.
    """

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> None:
        if request is None:
            return None
        return super().authenticate(request, username, password, **kwargs)
