"""Content-Security-Policy: every HTML answer carries the policy, on every dashboard URL (found
by walking the URL configuration, so a new page is covered without being listed), the login
pages, the admin and the API docs; JSON answers do not need it. That the browser meets no
violation on the pages is checked by every browser test (tests/browser/conftest.py)."""

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from recommender.services.merchandising import merchandising_rule_create
from tests.recommender.shop import fresh_serving, shop

__all__ = ["fresh_serving", "shop"]

pytestmark = pytest.mark.django_db

POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "font-src": "'self'",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}
DASHBOARDS = ("dashboard", "churn-dashboard", "tagging-dashboard")


def _patterns(patterns=None, prefix="", namespace=None):
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(entry, URLResolver):
            yield from _patterns(entry.url_patterns, prefix + str(entry.pattern), entry.namespace)
        elif isinstance(entry, URLPattern):
            yield namespace, prefix + str(entry.pattern)


DASHBOARD_URLS = sorted(pattern for ns, pattern in _patterns() if ns in DASHBOARDS)


def policy(response) -> dict[str, str]:
    """The response's policy, directive by directive (django-csp writes them in any order)."""
    directives = response["Content-Security-Policy"].split(";")
    return dict(directive.strip().split(" ", 1) for directive in directives)


def _url(pattern: str, rule_id: int) -> str:
    """A real URL for a dashboard route: the shop's product INK-1, customer C1, version 1."""
    values = {
        "product_id": "INK-1",
        "customer_id": "C1",
        "version": "1",
        "pk": str(rule_id),
    }

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "external_id":
            return "INK-1" if "products/" in pattern else "C1"
        return values[name]

    return "/" + re.sub(r"<(?:\w+:)?(\w+)>", value, pattern)


def test_the_walk_finds_the_dashboard_pages():
    # A sample: the walk must see all three apps' dashboards, with and without arguments.
    assert {
        "dashboard/",
        "dashboard/customers/<str:external_id>/",
        "dashboard/rules/<int:pk>/edit/",
        "dashboard/churn/",
        "dashboard/tags/fragments/products/<str:product_id>/tags",
    } <= set(DASHBOARD_URLS)
    assert len(DASHBOARD_URLS) == 26


@pytest.mark.parametrize("pattern", DASHBOARD_URLS)
def test_every_dashboard_url_answers_html_with_the_policy(client, admin_user, shop, pattern):
    rule = merchandising_rule_create(
        data={"name": "Acme", "action": "boost", "target_kind": "brand",
              "target_values": ["Acme"], "factor": 1.5}
    )  # fmt: skip
    client.force_login(admin_user)

    response = client.get(_url(pattern, rule.pk))

    content_type = response.get("Content-Type", "")
    if pattern.endswith(".js"):  # plotly.js itself
        assert content_type.startswith("text/javascript")
        return
    # Some routes only take a POST (405) or redirect a GET (302): their answer is HTML too.
    assert response.status_code in (200, 302, 405), pattern
    if response.status_code == 302 or not response.content:
        return
    assert content_type.startswith("text/html"), pattern
    assert policy(response) == POLICY


@pytest.mark.parametrize(
    "url", ["/accounts/login/", "/admin/login/", "/no-such-page/", "/dashboard/no-such-page/"]
)
def test_pages_for_everyone_carry_the_policy(client, url):
    response = client.get(url)

    assert policy(response) == POLICY


@pytest.mark.parametrize(
    "url",
    [
        "/admin/",
        "/admin/axes/accessattempt/",
        "/admin/accounts/apitoken/",
        "/api/docs/",
    ],
)
def test_the_admin_and_api_pages_carry_the_policy(client, django_user_model, url):
    client.force_login(django_user_model.objects.create_superuser("root", password="x-1234567"))

    response = client.get(url)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert policy(response) == POLICY


def test_swagger_ui_loads_its_settings_as_a_script_file_not_inline(client, admin_user):
    client.force_login(admin_user)

    page = client.get("/api/docs/").content.decode()
    script = client.get("/api/docs/?script=")

    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", page) == []
    assert re.findall(r"<style", page) == []
    assert re.findall(r"\sstyle=", page) == []
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle" in script.content.decode()


def test_json_answers_are_not_given_a_policy_even_for_a_browser(client, admin_user):
    client.force_login(admin_user)

    # DRF's browsable HTML pages are off (inline styles): a browser gets the JSON.
    response = client.get("/api/v1/products/", HTTP_ACCEPT="text/html,*/*;q=0.8")

    assert response["Content-Type"] == "application/json"
    assert "Content-Security-Policy" not in response


def test_no_template_holds_an_inline_script_style_or_event_handler():
    from pathlib import Path

    from tests.conftest import REPO_ROOT

    found = []
    for template in sorted(Path(REPO_ROOT, "templates").rglob("*.html")):
        text = template.read_text()
        for pattern in (
            r"<script(?![^>]*\b(?:src=|type=\"application/json\"))[^>]*>",
            r"<style",
            r"\sstyle=",
            r"\son[a-z]+=",
            r"javascript:",
        ):
            found += [f"{template.relative_to(REPO_ROOT)}: {m}" for m in re.findall(pattern, text)]
    assert found == []
