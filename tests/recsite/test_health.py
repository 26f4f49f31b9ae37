import pytest
from django.test import Client


@pytest.mark.django_db
def test_liveness_is_anonymous_and_ok(anon_client):
    response = anon_client.get("/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readiness_checks_database_and_broker(anon_client):
    response = anon_client.get("/health/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}


@pytest.mark.django_db
def test_readiness_reports_an_unreachable_broker(anon_client, settings):
    from recsite.celery import app

    original = app.conf.broker_url, app.conf.broker_write_url
    # Port 9 (discard) on loopback: nothing listens there, so the connection is refused.
    app.conf.broker_url = app.conf.broker_write_url = "redis://127.0.0.1:9/0"
    try:
        response = anon_client.get("/health/ready")
    finally:
        app.conf.broker_url, app.conf.broker_write_url = original
    body = response.json()
    assert response.status_code == 503
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["broker"].startswith("error: ")


@pytest.mark.django_db
def test_login_page_is_served_and_home_requires_login(anon_client):
    login = anon_client.get("/accounts/login/")
    assert login.status_code == 200
    assert b'name="username"' in login.content
    home = anon_client.get("/")
    assert home.status_code == 302
    assert home["Location"] == "/accounts/login/?next=/"


@pytest.mark.django_db
def test_home_leads_a_merchandiser_to_the_overview_with_catalogue_counts(client, merchandiser):
    client.force_login(merchandiser)
    response = client.get("/", follow=True)
    assert response.redirect_chain == [("/dashboard/", 302)]
    assert response.status_code == 200
    assert b'id="kpi-products">0<' in response.content
    assert b"(merchandiser)" in response.content


def test_favicon_is_an_empty_cacheable_answer_not_a_404(anon_client):
    response = anon_client.get("/favicon.ico")

    assert response.status_code == 204
    assert response.content == b""
    assert response["Cache-Control"] == "public, max-age=86400"


def test_with_https_required_health_stays_on_http_and_the_rest_redirects(db, settings):
    settings.SECURE_SSL_REDIRECT = True
    client = Client()  # A new client builds its middleware with the setting on.

    live = client.get("/health/live")
    login = client.get("/accounts/login/")

    assert live.status_code == 200
    assert (login.status_code, login["Location"]) == (301, "https://testserver/accounts/login/")
