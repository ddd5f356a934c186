"""In real Chromium (Debian's, driven by Playwright): log in, create a contact, create a
"Send SMS" message from its sub-panel, and watch it become "Sent", sent by a real worker
process through the simulator."""

import pytest
from huey.contrib.djhuey import HUEY

from crmsms.sms.models import SmsMessage
from tests.sms.test_worker_processes import start_worker, stop

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


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

