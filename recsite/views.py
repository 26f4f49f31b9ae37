"""The site root: signed-in people go to the dashboard, everyone else to the login page."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return redirect("dashboard:overview")


def favicon(request: HttpRequest) -> HttpResponse:
    """No icon, said without an error: browsers ask for /favicon.ico on pages that do not name
    one (Django's admin, the API docs), and a 404 there shows as a console error."""
    response = HttpResponse(status=204)
    response["Cache-Control"] = "public, max-age=86400"
    return response
