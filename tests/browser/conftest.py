"""A real browser (Debian's Chromium, driven by Playwright) against the live test server.

Every page a test opens is watched: a console error, an uncaught exception, a failed request to
the app, a Content-Security-Policy violation (``securitypolicyviolation`` events, whatever the
console says) or an HTML page of the app without the policy header fails the test at teardown,
and ``shot(page, name)`` saves a full-page screenshot under ``artifacts/screenshots/``
(git-ignored) for a person to look at.

The tests need Chromium at ``RECSITE_CHROMIUM`` (default ``/usr/bin/chromium``); the test
command installs Debian's package when it is missing. Playwright's own browser download is never
used (machines here cannot reach it).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO_ROOT

CHROMIUM = os.environ.get("RECSITE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
SCREENSHOTS = REPO_ROOT / "artifacts" / "screenshots"

pytestmark = pytest.mark.integration


# Reports every violation of the page's Content-Security-Policy to the test (an element blocked
# at load, a script that tried to inject a style or eval code later, in any frame).
CSP_WATCH = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.recsiteCspViolation(
    `${event.effectiveDirective} refused ${event.blockedURI || "an inline block"} ` +
    `(${event.sourceFile || document.location.href}:${event.lineNumber})`
  );
}, true);
"""


@dataclass
class PageWatch:
    """What went wrong on a page: console errors, page errors, failed app requests, policy
    violations, app pages without the policy."""

    problems: list[str] = field(default_factory=list)

    def check_policy_header(self, response: Any, app_url: str) -> None:
        if response.request.resource_type != "document" or not response.url.startswith(app_url):
            return
        headers = response.headers
        if headers.get("content-type", "").startswith("text/html") and (
            "content-security-policy" not in headers
        ):
            self.problems.append(f"no Content-Security-Policy: {response.url}")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Chromium for one test module.

    Playwright's sync API keeps an event loop running in the test thread while it is open.
    Django refuses ORM calls from such a thread unless told it is deliberate (it is: the test
    thread only sets up data; the live server answers in its own thread), and its per-thread
    connections become per-context, so a connection opened then is not the one closed at the
    end. Hence one module at a time, with the permission given only while it runs.
    """
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: install Debian's chromium package "
            "(scripts/test.sh does) or set RECSITE_CHROMIUM"
        )
    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser, live_server) -> Iterator[object]:
    """A fresh browser context and page; fails the test if the page logged any error."""
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    watch = PageWatch()
    page.on(
        "console",
        lambda msg: watch.problems.append(f"console {msg.type}: {msg.text}")
        if msg.type == "error"
        else None,
    )
    page.on("pageerror", lambda exc: watch.problems.append(f"page error: {exc}"))
    page.expose_function(
        "recsiteCspViolation", lambda text: watch.problems.append(f"CSP violation: {text}")
    )
    page.add_init_script(CSP_WATCH)
    page.on("response", lambda response: watch.check_policy_header(response, live_server.url))
    page.on(
        "requestfailed",
        lambda req: watch.problems.append(f"request failed: {req.url} ({req.failure})")
        if req.url.startswith(live_server.url)
        else None,
    )
    page.watch = watch
    yield page
    context.close()
    assert watch.problems == [], "the browser reported problems:\n" + "\n".join(watch.problems)


@pytest.fixture
def login(page) -> Callable[[str, str], object]:
    """Sign in through the real login form; returns the page on the landing page."""

    def do_login(username: str, password: str) -> object:
        page.goto("/accounts/login/")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        page.wait_for_load_state("networkidle")
        return page

    return do_login


@pytest.fixture
def shot(request) -> Callable[[object, str], Path]:
    """Save a full-page screenshot as ``artifacts/screenshots/<test>-<name>.png``."""

    def take(page, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{request.node.name}-{name}")
        path = SCREENSHOTS / f"{slug}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
