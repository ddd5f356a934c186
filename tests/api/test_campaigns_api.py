import pytest
from django.utils import timezone

from crmsms.crm.models import Contact
from crmsms.sms.models import SmsCampaign
from crmsms.sms.providers.memory import MemoryConnector

pytestmark = pytest.mark.django_db


@pytest.fixture
def template_id(api):
    return api.post("/api/v1/templates", {"name": "Promo", "module": "contacts",
                                          "body": "Hi {{ contact.first_name }}"}).json()["id"]


def test_campaign_end_to_end_through_the_api(api, client, contact, template_id, django_capture_on_commit_callbacks):
    other = Contact.objects.create(first_name="No", last_name="OptIn", phone_mobile="+33698765432")
    created = api.post("/api/v1/campaigns", {"name": "Spring", "send_at": timezone.now().isoformat(),
                                             "module": "contacts", "template_id": template_id})
    assert created.status_code == 201, created.json()
    cid = created.json()["id"]
    assert created.json()["status"] == "draft"
    added = api.post(f"/api/v1/campaigns/{cid}/recipients", {"contact_ids": [contact.pk, other.pk, 999999]})
    assert added.json() == {"changed": 2, "recipients": 2, "not_found": [999999]}
    assert api.get(f"/api/v1/campaigns/{cid}/forecast").json() == {"messages": 1, "skipped": {"no_opt_in": 1},
                                                                     "segments": 1}
    with django_capture_on_commit_callbacks(execute=True):
        generated = api.post(f"/api/v1/campaigns/{cid}/generate")
    assert generated.status_code == 200
    got = api.get(f"/api/v1/campaigns/{cid}").json()
    assert got["status"] == "sending" and got["stats"]["sent"] == 1 and got["stats"]["skipped"] == 1
    assert [m.body for m in MemoryConnector.outbox] == ["Hi Camille"]
    again = api.post(f"/api/v1/campaigns/{cid}/generate")
    assert again.status_code == 409 and again.json()["errors"][0]["field"] == "status"
    assert api.post(f"/api/v1/campaigns/{cid}/recipients", {"contact_ids": [contact.pk]}).status_code == 409


def test_remove_recipients_and_wrong_module(api, contact, account, template_id):
    cid = api.post("/api/v1/campaigns", {"name": "X", "send_at": timezone.now().isoformat(), "module": "contacts",
                                         "template_id": template_id}).json()["id"]
    api.post(f"/api/v1/campaigns/{cid}/recipients", {"contact_ids": [contact.pk]})
    wrong = api.post(f"/api/v1/campaigns/{cid}/recipients", {"account_ids": [account.pk]})
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "account_ids"
    from django.test import Client

    removed = Client().delete(f"/api/v1/campaigns/{cid}/recipients", {"contact_ids": [contact.pk]},
                              content_type="application/json", headers=api.headers)
    assert removed.json()["recipients"] == 0


def test_campaign_validation(api, template_id):
    bad = api.post("/api/v1/campaigns", {"name": " ", "send_at": timezone.now().isoformat(), "module": "accounts",
                                         "template_id": template_id})
    assert bad.status_code == 422
    assert {(e["field"], e["rule"]) for e in bad.json()["errors"]} == {("name", "required"), ("template_id", "module")}
    assert not SmsCampaign.objects.exists()


def test_campaign_list_queries_do_not_grow_with_campaigns(api, contact, template_id, django_assert_max_num_queries):
    for i in range(15):
        cid = api.post("/api/v1/campaigns", {"name": f"C{i}", "send_at": timezone.now().isoformat(),
                                             "module": "contacts", "template_id": template_id}).json()["id"]
        api.post(f"/api/v1/campaigns/{cid}/recipients", {"contact_ids": [contact.pk]})
    with django_assert_max_num_queries(6):
        page = api.get("/api/v1/campaigns").json()
    assert page["count"] == 15 and {c["recipients"] for c in page["items"]} == {1}
