"""The signed-in landing page. The merchandising dashboard mounts here as it grows."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.selectors import user_role
from recommender.selectors.overview import catalogue_overview


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "home.html",
        {"overview": catalogue_overview(), "role": user_role(request.user)},
    )
