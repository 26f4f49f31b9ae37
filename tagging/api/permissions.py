"""Who may review and manage tags.

Reviewing is a person's job: merchandisers hold only the 'read' scope, and an API token with
'read' must not accept tags for them, so the check is on the login, not the scopes alone.
"""

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from accounts.models import ApiToken
from accounts.roles import Scope
from accounts.selectors import request_scopes, user_role


def _is_person_with_role(request: Request) -> bool:
    return not isinstance(request.auth, ApiToken) and user_role(request.user) is not None


class IsMerchandiser(BasePermission):
    """A logged-in merchandiser or admin (not an API token)."""

    message = "This endpoint is for merchandisers and admins (signed in, not an API token)."

    def has_permission(self, request: Request, view: Any) -> bool:
        return _is_person_with_role(request)


class CanManageTags(BasePermission):
    """Reading tags needs 'read'; creating one needs 'ingest' (shop back ends) or a person's
    merchandiser role."""

    message = "Creating tags needs the 'ingest' scope or a merchandiser's login."

    def has_permission(self, request: Request, view: Any) -> bool:
        scopes = request_scopes(request)
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return Scope.READ in scopes
        return Scope.INGEST in scopes or _is_person_with_role(request)
