"""Writes for people and tokens."""

from collections.abc import Iterable
from datetime import datetime

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser, Group, User
from django.db import transaction
from django.utils import timezone

from .models import ApiToken, generate_token, hash_token
from .roles import TOKEN_SCOPES, Role
from .selectors import api_token_cache_forget


class TokenScopeError(ValueError):
    pass


def api_token_create(
    *,
    name: str,
    scopes: Iterable[str],
    created_by: User | None = None,
    expires_at: datetime | None = None,
) -> tuple[ApiToken, str]:
    """Create a token and return it with its raw value, which is never stored."""
    scope_list = sorted(set(scopes))
    unknown = [s for s in scope_list if s not in TOKEN_SCOPES]
    if unknown or not scope_list:
        allowed = ", ".join(TOKEN_SCOPES)
        raise TokenScopeError(f"scopes: expected one or more of {allowed}; got {scope_list}")
    raw = generate_token()
    token = ApiToken.objects.create(
        name=name,
        prefix=raw[:10],
        key_hash=hash_token(raw),
        scopes=scope_list,
        created_by=created_by,
        expires_at=expires_at,
    )
    return token, raw


def api_token_revoke(*, token: ApiToken) -> ApiToken:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    api_token_cache_forget(key_hash=token.key_hash)
    return token


def roles_ensure() -> list[Group]:
    """Create the role groups if missing. Idempotent; runs from a data migration too."""
    return [Group.objects.get_or_create(name=role)[0] for role in Role]


@transaction.atomic
def user_create_with_role(
    *, username: str, password: str, role: Role, email: str = ""
) -> AbstractUser:
    """Create (or reset the password of) a login with exactly one role."""
    roles_ensure()
    user_model = get_user_model()
    user, _ = user_model.objects.get_or_create(username=username, defaults={"email": email})
    user.set_password(password)
    # Staff status lets the login reach Django's admin for its role's models.
    user.is_staff = True
    user.save()
    user.groups.set([Group.objects.get(name=role)])
    return user
