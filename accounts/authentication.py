"""DRF authentication by API token: ``Authorization: Bearer rs_...``."""

from datetime import timedelta
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from .models import ApiToken
from .selectors import api_token_get_active

# last_used_at is written at most this often per token, not on every request.
_LAST_USED_RESOLUTION = timedelta(minutes=1)


class TokenUser(AnonymousUser):
    """The user attached to token requests: not a login, authenticated by its token."""

    def __init__(self, token: ApiToken) -> None:
        super().__init__()
        self.token = token
        # AnonymousUser types username as the literal "", but this principal has a name.
        self.username = f"token:{token.name}"  # type: ignore[assignment]

    @property
    def is_authenticated(self) -> bool:  # type: ignore[override]
        return True

    def __str__(self) -> str:
        return self.username


class ApiTokenAuthentication(authentication.BaseAuthentication):
    keywords = ("bearer", "token")

    def authenticate(self, request: Request) -> tuple[Any, ApiToken] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower().decode() not in self.keywords:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(
                "Authorization header: expected 'Bearer <token>'."
            )
        token = api_token_get_active(raw=header[1].decode(errors="replace"))
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid, revoked or expired API token.")
        now = timezone.now()
        if token.last_used_at is None or now - token.last_used_at > _LAST_USED_RESOLUTION:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
            token.last_used_at = now  # The instance may be the process's cached one.
        return TokenUser(token), token

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'
