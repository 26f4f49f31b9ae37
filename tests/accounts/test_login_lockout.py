"""Failed-login lockout (django-axes) on both login pages: after RECSITE_LOGIN_FAILURE_LIMIT
wrong passwords in a row the login is refused, even with the right password, for
RECSITE_LOGIN_LOCKOUT_MINUTES after the last attempt."""

from datetime import timedelta
from typing import Any

import pytest
from axes.models import AccessAttempt
from django.db.models import F
from django.test import Client

pytestmark = pytest.mark.django_db

LOGIN_PAGES = ["/accounts/login/", "/admin/login/"]


def _attempt(client: Client, url: str, password: str, **extra: Any):
    return client.post(url, {"username": "boss", "password": password}, **extra)


def _age_attempts(by: timedelta) -> None:
    """The failed attempts happened ``by`` earlier (instead of waiting that long)."""
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - by)


@pytest.mark.parametrize("url", LOGIN_PAGES)
def test_31_wrong_passwords_lock_the_login_for_the_configured_time(url, admin_user):
    client = Client()

    answers = [_attempt(client, url, f"wrong-{n}").status_code for n in range(31)]
    right = _attempt(client, url, "boss-pass-123")

    # The first nine get the form again; the tenth failure locks, and so does everything after.
    assert answers == [200] * 9 + [429] * 22
    assert right.status_code == 429
    assert right["Retry-After"] == "900"
    page = right.content.decode()
    assert "Too many failed logins for <strong>boss</strong>: 10 in a row." in page
    assert "refused, even with the right password, for 15 minutes after the last attempt" in page
    assert "_auth_user_id" not in client.session

    # Still locked a moment before the time is up (counted from the last attempt) ...
    _age_attempts(timedelta(minutes=14, seconds=50))
    assert _attempt(client, url, "boss-pass-123").status_code == 429
    # ... and open once it is.
    _age_attempts(timedelta(minutes=15, seconds=1))
    opened = _attempt(client, url, "boss-pass-123")
    assert opened.status_code == 302
    assert client.session["_auth_user_id"] == str(admin_user.pk)


@pytest.mark.parametrize("url", LOGIN_PAGES)
def test_a_lockout_is_for_that_account_from_that_address_only(url, admin_user, merchandiser):
    locked = Client()
    for n in range(10):
        _attempt(locked, url, f"wrong-{n}")

    elsewhere = Client(REMOTE_ADDR="203.0.113.7")
    assert _attempt(elsewhere, url, "boss-pass-123").status_code == 302
    colleague = locked.post(url, {"username": "merch", "password": "merch-pass-123"})
    assert colleague.status_code == 302
    assert locked.session["_auth_user_id"] == str(merchandiser.pk)


def test_a_success_forgets_the_failures_before_it(admin_user):
    client = Client()
    for n in range(9):
        _attempt(client, "/accounts/login/", f"wrong-{n}")

    assert _attempt(client, "/accounts/login/", "boss-pass-123").status_code == 302
    client.logout()
    answers = [_attempt(client, "/accounts/login/", f"again-{n}").status_code for n in range(9)]
    assert answers == [200] * 9


def test_a_script_gets_the_lockout_as_json(admin_user):
    client = Client()
    for n in range(10):
        _attempt(client, "/accounts/login/", f"wrong-{n}")

    answer = _attempt(
        client, "/accounts/login/", "boss-pass-123", HTTP_X_REQUESTED_WITH="XMLHttpRequest"
    )

    assert answer.status_code == 429
    assert answer.json() == {
        "detail": "Too many failed logins: this login is locked.",
        "retry_after": 900,
    }
