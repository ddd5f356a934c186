"""Real Chromium (Debian's, driven by Playwright; never a downloaded browser)."""

import os
import shutil

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture
def browser():
    playwright = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.fail("Chromium is missing: `make test` installs Debian's chromium (scripts/ensure-chromium)")
    # Playwright's sync API runs an event loop in this thread; the test's own database
    # calls are ordinary synchronous ones.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
        ])
        yield browser
        browser.close()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture(scope="session", autouse=True)
def _close_live_server_sessions(django_db_setup, django_db_blocker, live_server):
    """A page polling when the browser closes leaves a live-server request thread that never
    reaches request_finished, so its PostgreSQL session stays open and the test database
    cannot be dropped at the end of the run. Once every browser test is done (and the live
    server stopped), close such leftovers of this test run."""
    yield
    from django.db import connection

    with django_db_blocker.unblock():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                               "WHERE datname = current_database() AND pid <> pg_backend_pid()")



@pytest.fixture
def logged_in(browser, live_server, user):
    """A page logged in as alice."""
    page = browser.new_page()
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "wonderland-42")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    yield page
    page.close()
