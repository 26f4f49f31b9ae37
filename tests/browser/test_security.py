"""The pages outside the dashboard, in a real browser under the Content-Security-Policy (the
``page`` fixture fails a test on any violation): Swagger UI, the admin, and the login lockout."""

import pytest
from drf_spectacular.generators import SchemaGenerator

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def root(django_user_model):
    return django_user_model.objects.create_superuser("root", password="root-pass-123")


def test_swagger_ui_runs_under_the_policy(page, login, root, shot):
    login("root", "root-pass-123")

    page.goto("/api/docs/")
    page.wait_for_selector(".opblock")
    page.locator(".opblock-summary").first.click()  # Opening an operation renders its forms.
    page.wait_for_selector(".opblock.is-open .opblock-body")

    schema = SchemaGenerator().get_schema(request=None, public=True)
    operations = sum(len(methods) for methods in schema["paths"].values())
    assert page.locator(".opblock").count() == operations
    shot(page, "swagger")


@pytest.mark.parametrize("url", ["/admin/", "/admin/axes/accessattempt/"])
def test_the_admin_runs_under_the_policy(page, login, root, shot, url):
    login("root", "root-pass-123")

    page.goto(url)
    page.wait_for_load_state("networkidle")

    assert page.locator("body").inner_text() != ""
    shot(page, url.strip("/").replace("/", "-"))


def test_ten_wrong_passwords_show_the_lockout_page(page, login, merchandiser, shot):
    for n in range(9):
        login("merch", f"wrong-{n}")
        assert "Please enter a correct username and password" in page.content()

    # The tenth: the page answers 429 (the browser says so in its console; that is expected).
    page.watch.problems.clear()
    login("merch", "wrong-9")
    problems = list(page.watch.problems)
    page.watch.problems.clear()

    assert page.locator("#locked-out h1").inner_text() == "Login locked"
    assert "for 15 minutes after the last attempt" in page.locator("#locked-out").inner_text()
    assert all("429" in problem for problem in problems), problems
    shot(page, "locked-out")
