"""In real Chromium (Debian's, driven by Playwright): log in, create a contact, create a
"Send SMS" message from its sub-panel, and watch it become "Sent", sent by a real worker
process through the simulator."""

import os
import shutil

import pytest
from huey.contrib.djhuey import HUEY

from crmsms.sms.models import SmsMessage
from tests.sms.test_worker_processes import start_worker, stop

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


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
    _close_live_server_sessions()


def _close_live_server_sessions():
    """A page polling when the browser closes leaves a live-server request thread that never
    reaches request_finished, so its PostgreSQL session stays open and the test database
    cannot be dropped at the end of the run. Close such leftovers of this test run."""
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           "WHERE datname = current_database() AND pid <> pg_backend_pid()")


def test_create_contact_send_sms_and_see_it_sent(browser, live_server, user, sim, tmp_path, settings):
    HUEY.immediate = False  # the real path: the web process hands work to a worker process
    worker = start_worker(tmp_path, sim.url, "worker", CRMSMS_DATA_DIR=str(settings.DATA_DIR))
    try:
        page = browser.new_page()
        page.goto(f"{live_server.url}/contacts/")
        assert "/login/" in page.url
        page.fill("input[name=username]", "alice")
        page.fill("input[name=password]", "wonderland-42")
        page.click("button[type=submit]")
        page.wait_for_url(f"{live_server.url}/contacts/")

        page.click("text=Create")
        page.fill("#id_first_name", "Jeanne")
        page.fill("#id_last_name", "Martin")
        page.fill("#id_phone_mobile", "06 12 34 56 78")
        page.check("#id_sms_opt_in")
        page.click("button:has-text('Save')")
        page.wait_for_selector("h1:has-text('Jeanne Martin')")
        assert page.is_visible("text=+33 6 12 34 56 78")

        page.click("#sms-messages >> text=Create")
        page.fill("#id_body", "Bonjour Jeanne, votre commande est arrivée.")
        assert "GSM-7" in page.inner_text(".counter")
        assert page.inner_text("form[data-sms-form] button[type=submit]") == "Save draft"
        page.check("input[name=status][value=to_send]")
        assert page.inner_text("form[data-sms-form] button[type=submit]") == "Save and send"
        page.click("form[data-sms-form] button[type=submit]")
        page.wait_for_selector("h1:has-text('Jeanne Martin')")
        # The sub-panel refreshes itself until the worker has sent the message.
        page.wait_for_selector("#sms-messages .badge-sent", timeout=20_000)
        assert "Sent" in page.inner_text("#sms-messages")
        page.close()
    finally:
        stop(worker)
        HUEY.immediate = True
    message = SmsMessage.objects.get()
    assert message.status == "sent"
    assert [e["body"] for e in sim.accepted()] == ["Bonjour Jeanne, votre commande est arrivée."]

