"""Who may open a dashboard page: decorators for the plain Django views of every app's dashboard
(they check the roles of this app, so every app uses them without importing another's pages).

Signed-out visitors are sent to the login page; a signed-in person without the needed scope gets
403 (rendered by ``templates/403.html``), so a link hidden from the menu is also closed.
"""

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from accounts.roles import Scope
from accounts.selectors import user_scopes

ViewT = TypeVar("ViewT", bound=Callable[..., HttpResponse])


def _needs(scope: str) -> Callable[[ViewT], ViewT]:
    def decorator(view: ViewT) -> ViewT:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if scope not in user_scopes(request.user):
                raise PermissionDenied("This page is for admins." if scope == Scope.ADMIN else "")
            return view(request, *args, **kwargs)

        return cast(ViewT, wrapped)

    return decorator


#: Merchandisers and admins (the ``read`` scope).
dashboard_view = _needs(Scope.READ)
#: Admins only (the ``admin`` scope): jobs, tokens.
admin_view = _needs(Scope.ADMIN)
