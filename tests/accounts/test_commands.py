"""manage.py create_api_token and create_login."""

from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth import authenticate
from django.core.management import CommandError, call_command
from django.utils import timezone

from accounts.models import ApiToken, hash_token
from accounts.selectors import user_role


def _run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


# create_api_token ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_create_api_token_prints_the_token_alone_on_stdout():
    # when
    out, err = _run("create_api_token", "--name", "shop-prod", "--scopes", "read,ingest")
    # then
    raw = out.splitlines()[-1]
    assert out == raw + "\n"
    token = ApiToken.objects.get()
    assert (token.name, token.scopes, token.expires_at) == ("shop-prod", ["ingest", "read"], None)
    assert token.key_hash == hash_token(raw)
    assert err == (
        f"Created API token 'shop-prod' (id {token.pk}; scopes: ingest, read; no expiry).\n"
        "It is shown only this once: store it now. "
        "Send it as the header 'Authorization: Bearer <token>'.\n"
    )


@pytest.mark.django_db
def test_create_api_token_can_expire():
    before = timezone.now()
    _run("create_api_token", "--name", "trial", "--scopes", "read", "--expires-days", "7")
    token = ApiToken.objects.get()
    assert token.expires_at is not None
    assert before + timedelta(days=7) <= token.expires_at <= timezone.now() + timedelta(days=7)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--name", "x", "--scopes", "read,admin"],
            "--scopes: expected a comma-separated list of read, ingest, privacy; got 'read,admin'",
        ),
        (
            ["--name", "x", "--scopes", ","],
            "--scopes: expected a comma-separated list of read, ingest, privacy; got ','",
        ),
        (["--name", " ", "--scopes", "read"], "--name: must not be empty"),
        (
            ["--name", "x", "--scopes", "read", "--expires-days", "0"],
            "--expires-days: must be at least 1, got 0",
        ),
    ],
)
def test_create_api_token_refuses_bad_arguments(args, message):
    with pytest.raises(CommandError) as excinfo:
        _run("create_api_token", *args)
    assert str(excinfo.value) == message
    assert ApiToken.objects.count() == 0


# create_login ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_create_login_creates_then_resets():
    # when
    created, _ = _run(
        "create_login", "--username", "ana", "--role", "merchandiser", "--password", "Tulip-7-river"
    )
    reset, _ = _run(
        "create_login", "--username", "ana", "--role", "admin", "--password", "Other-8-stone"
    )
    # then
    assert created == "Created login 'ana' with role merchandiser.\n"
    assert reset == "Reset the password and role of login 'ana' with role admin.\n"
    user = authenticate(username="ana", password="Other-8-stone")
    assert user is not None
    assert user_role(user) == "admin"
    assert list(user.groups.values_list("name", flat=True)) == ["admin"]


@pytest.mark.django_db
def test_create_login_reads_the_password_from_the_environment(monkeypatch):
    monkeypatch.setenv("RECSITE_LOGIN_PASSWORD", "Quiet-9-harbour")
    out, _ = _run("create_login", "--username", "boss", "--role", "admin")
    assert out == "Created login 'boss' with role admin.\n"
    assert authenticate(username="boss", password="Quiet-9-harbour") is not None


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--username", "ana", "--role", "merchandiser"],
            "--password: give a password, or set RECSITE_LOGIN_PASSWORD",
        ),
        (
            ["--username", "ana", "--role", "merchandiser", "--password", "123"],
            "--password: This password is too short. It must contain at least 8 characters. "
            "This password is too common. This password is entirely numeric.",
        ),
        (
            ["--username", "", "--role", "admin", "--password", "Tulip-7-river"],
            "--username: must not be empty",
        ),
    ],
)
def test_create_login_refuses_bad_arguments(monkeypatch, args, message):
    monkeypatch.delenv("RECSITE_LOGIN_PASSWORD", raising=False)
    with pytest.raises(CommandError) as excinfo:
        _run("create_login", *args)
    assert str(excinfo.value) == message


@pytest.mark.django_db
def test_create_login_refuses_an_unknown_role():
    with pytest.raises(CommandError) as excinfo:
        _run("create_login", "--username", "ana", "--role", "owner", "--password", "Tulip-7-river")
    # argparse quotes the list of choices differently across Python releases.
    assert str(excinfo.value).startswith("Error: argument --role: invalid choice: 'owner'")
    assert "merchandiser" in str(excinfo.value)
