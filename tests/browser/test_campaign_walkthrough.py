"""The manual's campaign walkthrough in real Chromium, with a real worker process sending
through the simulator: create a campaign (Draft), add recipients from the picker, see what
generation will do, « Generate all SMS Messages », and watch the statuses per message
arrive on the campaign page without reloading it."""

import pytest
from django.utils import timezone
from huey.contrib.djhuey import HUEY

from crmsms.crm.models import Contact
from crmsms.sms.models import SmsCampaign, SmsTemplate
from tests.sms.test_worker_processes import start_worker, stop

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_create_a_campaign_add_recipients_generate_and_see_statuses(logged_in, live_server, sim, tmp_path,
                                                                      settings):
    for first, last, number, opt_in in [("Jeanne", "Martin", "+33612345678", True),
                                        ("Paul", "Martin", "+33612345679", True),
                                        ("Luc", "Martin", "+33612345680", False),
                                        ("Zoé", "Durand", "+33612345681", True)]:
        Contact.objects.create(first_name=first, last_name=last, phone_mobile=number, sms_opt_in=opt_in)
    SmsTemplate.objects.create(name="Black Friday", module="contacts",
                               body="Bonjour {{ contact.first_name }}, -20% ce week-end !")
    HUEY.immediate = False  # the real path: the web process hands generation to a worker
    worker = start_worker(tmp_path, sim.url, "worker", CRMSMS_DATA_DIR=str(settings.DATA_DIR))
    page = logged_in
    page.on("dialog", lambda dialog: dialog.accept())  # « Generate one SMS per recipient? »
    try:
        # « Create », then the campaign's details; it stays a Draft.
        page.goto(f"{live_server.url}/campaigns/")
        page.click("text=Create")
        page.fill("#id_name", "Black Friday")
        local = timezone.localtime(timezone.now()).strftime("%Y-%m-%dT%H:%M")
        page.fill("#id_send_at", local)
        page.check("input[name=module][value=contacts]")
        page.select_option("#id_template", label="Black Friday (Contacts)")
        page.uncheck("#id_respect_hours")  # the test runs at any hour
        page.click("button:has-text('Save')")
        page.wait_for_selector("h1:has-text('Black Friday')")
        assert "Draft" in page.inner_text("h1")

        # Recipients: find the Martins, tick two, add; then add all matching "Durand".
        page.fill("input[name=pick]", "martin")
        page.click("button:has-text('Find')")
        page.check("label:has-text('Jeanne Martin') input")
        page.check("label:has-text('Luc Martin') input")
        page.click("button:has-text('Add selected')")
        page.wait_for_selector("text=Added 2 recipients")
        page.fill("input[name=pick]", "durand")
        page.click("button:has-text('Find')")
        page.click("button:has-text('Add all 1 matching')")
        page.wait_for_selector("text=Added 1 recipient")
        forecast = page.inner_text("#forecast")
        assert "2 SMS will be generated" in forecast and "No opt-in: 1" in forecast

        # « Generate all SMS Messages »: the worker generates and sends; the page follows.
        page.click("button:has-text('Generate all SMS Messages')")
        page.wait_for_selector("#campaign-sms .badge-sent", timeout=30_000)
        page.wait_for_selector("h1 .badge-c-completed", timeout=30_000)
        stats = page.inner_text(".stats")
        assert "Sent 2" in stats and "Skipped 1" in stats
        table = page.inner_text("#campaign-sms")
        assert "Jeanne Martin" in table and "Zoé Durand" in table and "Luc Martin" in table
        assert page.is_visible("figure.chart svg")
        page.select_option("#campaign-sms select[name=status]", "skipped")
        page.click("#campaign-sms button:has-text('Filter')")
        page.wait_for_url("**status=skipped**")
        assert "Luc Martin" in page.inner_text("#campaign-sms") and "Jeanne" not in page.inner_text("#campaign-sms")
    finally:
        stop(worker)
        HUEY.immediate = True
    sent = sorted(m["to"] for m in sim.accepted())
    assert sent == ["+33612345678", "+33612345681"]
    assert SmsCampaign.objects.get().status == SmsCampaign.COMPLETED
