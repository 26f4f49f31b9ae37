"""Signing in through the real login page in a real browser."""

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_merchandiser_signs_in_and_sees_their_name(page, login, merchandiser, shot):
    login("merch", "merch-pass-123")

    assert page.locator(".who").inner_text() == "merch"
    shot(page, "landing")


def test_wrong_password_is_refused_with_a_message(page, login, merchandiser):
    login("merch", "wrong-password")

    assert page.url.endswith("/accounts/login/")
    assert "Please enter a correct username and password" in page.content()
