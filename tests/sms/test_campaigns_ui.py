"""The SMS Campaigns module, as the manual walks through it."""

import pytest
from django.utils import timezone

from crmsms.crm.models import Contact
from crmsms.sms import campaigns, generation
from crmsms.sms.models import SmsCampaign, SmsTemplate
from crmsms.sms.providers.memory import MemoryConnector

pytestmark = pytest.mark.django_db


@pytest.fixture
def template(db):
    return SmsTemplate.objects.create(name="Promo", module="contacts", body="Hi {{ contact.first_name }}!")


def local_now():
    return timezone.localtime(timezone.now(), timezone=__import__("zoneinfo").ZoneInfo("Europe/Paris")) \
        .strftime("%Y-%m-%dT%H:%M")


def test_the_manuals_walk_through(web, template, contact, django_capture_on_commit_callbacks):
    Contact.objects.create(first_name="Lucas", last_name="Petit", phone_mobile="+33698765432", sms_opt_in=False)
    # Create: name, date of dispatch, module, template; it stays a Draft.
    response = web.post("/campaigns/new/", {"name": "Black Friday", "send_at": local_now(), "module": "contacts",
                                            "template": template.pk})
    campaign = SmsCampaign.objects.get()
    assert response["Location"] == f"/campaigns/{campaign.pk}/" and campaign.status == "draft"
    # Recipients: find, tick, add; and add all matching a search.
    page = web.get(f"/campaigns/{campaign.pk}/", {"pick": "bernard"}).content.decode()
    assert "Camille Bernard" in page and "Lucas" not in page
    web.post(f"/campaigns/{campaign.pk}/recipients/", {"ids": [contact.pk], "action": "add"})
    web.post(f"/campaigns/{campaign.pk}/recipients/", {"pick": "Lucas", "all_matching": "1"})
    assert campaign.recipients.count() == 2
    page = web.get(f"/campaigns/{campaign.pk}/").content.decode()
    assert "<b>1</b> SMS will be generated" in page and "No opt-in: 1" in page
    # « Generate all SMS Messages »: the worker generates, the dispatcher sends.
    with django_capture_on_commit_callbacks(execute=True):
        web.post(f"/campaigns/{campaign.pk}/action/", {"action": "generate"})
    campaign.refresh_from_db()
    assert campaign.status == "sending" and campaign.messages.count() == 2
    assert [m.body for m in MemoryConnector.outbox] == ["Hi Camille!"]
    page = web.get(f"/campaigns/{campaign.pk}/").content.decode()
    assert "Statistics" in page and "badge-sent" in page and "badge-skipped" in page
    filtered = web.get(f"/campaigns/{campaign.pk}/", {"status": "skipped"}).content.decode()
    assert "Lucas Petit" in filtered and "Hi Camille!" not in filtered
    # The contact's page lists the campaign with the status of its message.
    assert "Black Friday" in web.get(f"/contacts/{contact.pk}/").content.decode()


def test_a_campaign_is_only_edited_while_draft(web, template, contact):
    campaign = SmsCampaign.objects.create(name="X", module="contacts", template=template, send_at=timezone.now())
    campaigns.add_recipients(campaign, [contact.pk])
    campaigns.start_generation(campaign)
    response = web.get(f"/campaigns/{campaign.pk}/edit/", follow=True)
    assert "only a Draft can be edited" in response.content.decode()
    refused = web.post(f"/campaigns/{campaign.pk}/recipients/", {"ids": [contact.pk], "action": "remove"}, follow=True)
    assert "Recipients can only change while the campaign is a Draft." in refused.content.decode()


def test_template_of_another_module_is_refused(web):
    accounts_template = SmsTemplate.objects.create(name="A", module="accounts", body="x")
    response = web.post("/campaigns/new/", {"name": "X", "send_at": local_now(), "module": "contacts",
                                            "template": accounts_template.pk})
    assert "is based on Accounts, not Contacts" in response.content.decode()
    assert not SmsCampaign.objects.exists()


def test_generate_without_recipients_says_why(web, template):
    campaign = SmsCampaign.objects.create(name="X", module="contacts", template=template, send_at=timezone.now())
    page = web.post(f"/campaigns/{campaign.pk}/action/", {"action": "generate"}, follow=True).content.decode()
    assert "Add recipients before generating." in page
    campaign.refresh_from_db()
    assert campaign.status == "draft"


def test_pause_and_cancel_from_the_page(web, template, contact):
    campaign = SmsCampaign.objects.create(name="X", module="contacts", template=template,
                                          send_at=timezone.now() + timezone.timedelta(days=1))
    campaigns.add_recipients(campaign, [contact.pk])
    campaigns.start_generation(campaign)
    generation.generate(campaign.pk)
    web.post(f"/campaigns/{campaign.pk}/action/", {"action": "pause"})
    campaign.refresh_from_db()
    assert campaign.status == "paused"
    page = web.post(f"/campaigns/{campaign.pk}/action/", {"action": "cancel"}, follow=True).content.decode()
    assert "1 SMS not sent yet were cancelled" in page


def test_campaign_list_filters_by_status(web, template):
    SmsCampaign.objects.create(name="Spring", module="contacts", template=template, send_at=timezone.now())
    SmsCampaign.objects.create(name="Autumn", module="contacts", template=template, send_at=timezone.now(),
                               status="completed")
    page = web.get("/campaigns/", {"status": "completed"}).content.decode()
    assert "Autumn" in page and "Spring" not in page


def test_campaign_pages_never_count_the_messages(web, template):
    """A campaign of a million messages must not be counted row by row on every page view:
    its figures, its pagers and its chart come from the counts kept with each change."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from crmsms.sms import dispatch

    people = Contact.objects.bulk_create(
        Contact(first_name=f"P{i}", last_name="X", phone_mobile=f"+3361{i:07d}", sms_opt_in=i % 4 != 0)
        for i in range(120))
    campaign = SmsCampaign.objects.create(name="Big", module="contacts", template=template, send_at=timezone.now())
    campaigns.add_recipients(campaign, [p.pk for p in people])
    campaigns.start_generation(campaign)
    generation.generate(campaign.pk)
    dispatch.dispatch_once()
    for url in (f"/campaigns/{campaign.pk}/", f"/campaigns/{campaign.pk}/?status=sent&page=2",
                f"/sms/?campaign={campaign.pk}", f"/sms/?campaign={campaign.pk}&status=skipped"):
        with CaptureQueriesContext(connection) as queries:
            response = web.get(url)
        assert response.status_code == 200
        assert len(queries) <= 15, url
        counting = [q["sql"] for q in queries if "sms_smsmessage" in q["sql"] and "COUNT(" in q["sql"].upper()]
        assert counting == [], url
    page = web.get(f"/campaigns/{campaign.pk}/").content.decode()
    assert "Page 1 of 5" in page  # 90 sent + 30 skipped, 25 a page: from the kept counts
    assert "Over time" in page and 'class="bar-sent"' in page
    listed = web.get(f"/sms/?campaign={campaign.pk}&status=skipped").content.decode()
    assert "Page 1 of 2" in listed


def test_chart_groups_activity_into_at_most_60_bars(template):
    from datetime import UTC, datetime, timedelta

    from crmsms.sms import chart
    from crmsms.sms.models import CampaignActivity

    campaign = SmsCampaign.objects.create(name="C", module="contacts", template=template, send_at=timezone.now())
    assert chart.campaign_chart(campaign) is None
    start = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
    CampaignActivity.objects.bulk_create(
        [CampaignActivity(campaign=campaign, minute=start + timedelta(minutes=m), status="sent", n=10)
         for m in range(180)]
        + [CampaignActivity(campaign=campaign, minute=start + timedelta(minutes=m), status="delivered", n=5)
           for m in range(0, 180, 2)])
    drawn = chart.campaign_chart(campaign)
    assert drawn.step == timedelta(minutes=5) and len(drawn.bars) == 36 and drawn.step_label == "5 minutes"
    assert drawn.bars[0].counts == {"sent": 50, "delivered": 15} and drawn.peak == 65
    assert sum(bar.total for bar in drawn.bars) == 180 * 10 + 90 * 5
    assert [s for s, _ in drawn.statuses] == ["sent", "delivered"]
    tallest = drawn.bars[0]
    assert sum(height for _, _, height in tallest.parts) == pytest.approx(chart.HEIGHT)


def test_import_recipients_from_a_csv(web, template, contact):
    from django.core.files.uploadedfile import SimpleUploadedFile

    other = Contact.objects.create(first_name="Lucas", last_name="Petit", phone_mobile="+33698765432")
    campaign = SmsCampaign.objects.create(name="CSV", module="contacts", template=template, send_at=timezone.now())
    csv_file = SimpleUploadedFile("list.csv", (
        "id or number;name\n"
        f"{contact.pk};Camille\n"
        "06 98 76 54 32;Lucas, typed nationally\n"
        "+33 6 00 00 00 99;nobody has it\n"
        "999999;no such id\n"
        "not a number;\n"
    ).encode("utf-8"), content_type="text/csv")
    response = web.post(f"/campaigns/{campaign.pk}/import/", {"file": csv_file}, follow=True)
    page = response.content.decode()
    assert set(campaign.recipients.values_list("contact_id", flat=True)) == {contact.pk, other.pk}
    assert "2 matched, 2 added, <b>3</b> lines not matched" in page
    for line in ("line 4: +33600000099", "line 5: 999999", "line 6: not a number"):
        assert line in page


def test_a_template_page_lists_its_campaigns(web, template):
    SmsCampaign.objects.create(name="Spring sale", module="contacts", template=template, send_at=timezone.now())
    page = web.get(f"/templates/{template.pk}/").content.decode()
    assert "Spring sale" in page and "badge-c-draft" in page


def test_review_fixes(web, template, contact):
    # A draft campaign keeps its template: deleting it is refused, naming the campaign.
    campaign = SmsCampaign.objects.create(name="Spring", module="contacts", template=template, send_at=timezone.now())
    page = web.post(f"/templates/{template.pk}/delete/", follow=True).content.decode()
    assert "campaigns not generated yet (Spring)" in page and SmsTemplate.objects.filter(pk=template.pk).exists()
    # Nothing ticked: said, not "Added 0".
    page = web.post(f"/campaigns/{campaign.pk}/recipients/", {"action": "add"}, follow=True).content.decode()
    assert "Tick the records to add first." in page
    # Two tabs editing one draft campaign.
    form = web.get(f"/campaigns/{campaign.pk}/edit/").content.decode()
    loaded_at = form.split('name="loaded_at" value="')[1].split('"')[0]
    data = {"name": "Spring", "send_at": local_now(), "module": "contacts", "template": template.pk,
            "loaded_at": loaded_at}
    assert web.post(f"/campaigns/{campaign.pk}/edit/", data).status_code == 302
    late = web.post(f"/campaigns/{campaign.pk}/edit/", {**data, "name": "Renamed"})
    assert "This campaign was changed since you opened it" in late.content.decode()


def test_csv_files_that_are_not_lists(web, template):
    from django.core.files.uploadedfile import SimpleUploadedFile

    campaign = SmsCampaign.objects.create(name="CSV", module="contacts", template=template, send_at=timezone.now())
    for content, words in [(b"", "CSV file: the file is empty."),
                           (b"1," + b"x" * 200_000 + b"\n", "CSV file: line 1 cannot be read")]:
        page = web.post(f"/campaigns/{campaign.pk}/import/",
                        {"file": SimpleUploadedFile("f.csv", content)}, follow=True).content.decode()
        assert words in page


def test_a_number_changed_after_generation_is_not_sent_twice(user, template):
    from crmsms.sms import dispatch

    a = Contact.objects.create(first_name="A", last_name="X", phone_mobile="+33600000001", sms_opt_in=True)
    b = Contact.objects.create(first_name="B", last_name="X", phone_mobile="+33600000002", sms_opt_in=True)
    campaign = SmsCampaign.objects.create(name="Dup", module="contacts", template=template, send_at=timezone.now(),
                                          created_by=user)
    campaigns.add_recipients(campaign, [a.pk, b.pk])
    campaigns.start_generation(campaign)
    generation.generate(campaign.pk)
    b.phone_mobile = a.phone_mobile  # after generation, b takes a's number
    b.save()
    dispatch.dispatch_once()
    assert [m.to for m in MemoryConnector.outbox] == ["+33600000001"]
    assert campaign.messages.get(contact=b).error_code == "duplicate_number"


def test_api_refuses_absurd_recipient_ids(api, template):
    campaign = SmsCampaign.objects.create(name="X", module="contacts", template=template, send_at=timezone.now())
    response = api.post(f"/api/v1/campaigns/{campaign.pk}/recipients", {"contact_ids": [10**20]})
    assert response.status_code == 422 and response.json()["errors"][0]["field"].startswith("contact_ids")


def test_a_campaign_message_links_to_its_campaign(web, user, template, contact):
    campaign = SmsCampaign.objects.create(name="Linked", module="contacts", template=template, send_at=timezone.now(),
                                          created_by=user)
    campaigns.add_recipients(campaign, [contact.pk])
    campaigns.start_generation(campaign)
    generation.generate(campaign.pk)
    message = campaign.messages.get()
    assert "Linked" in web.get(f"/sms/{message.pk}/").content.decode()
    listed = web.get("/sms/", {"campaign": campaign.pk}).context["page"].object_list
    assert [m.pk for m in listed] == [message.pk]
    assert list(web.get("/sms/", {"campaign": campaign.pk + 1}).context["page"].object_list) == []


def test_a_record_page_title_is_its_name_even_with_campaigns(web, template, contact):
    import re

    campaign = SmsCampaign.objects.create(name="Spring", module="contacts", template=template, send_at=timezone.now())
    campaigns.add_recipients(campaign, [contact.pk])
    page = web.get(f"/contacts/{contact.pk}/").content.decode()
    title = re.search(r"<title>(.*?)</title>", page, re.S).group(1)
    assert "<" not in title and contact.full_name in title
    assert "Spring" in page  # the campaigns panel is in the page, not in its title
