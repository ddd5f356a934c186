"""Sending hours: a campaign texts people only in its hours, in each recipient's own time
zone (worked out from the number), across changes of daylight saving time; generation sets
each message's due date so, the worker checks again before sending, and the form and the
API refuse hours that make no sense."""

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import phonenumbers.tzdata
import pytest
from django.utils import timezone

from crmsms.crm.models import Contact
from crmsms.sms import campaigns, dispatch, generation, sending_hours, states
from crmsms.sms.models import SmsCampaign, SmsMessage, SmsTemplate
from crmsms.sms.providers.memory import MemoryConnector
from crmsms.sms.sending_hours import SendingHours

PARIS, NEW_YORK, LOS_ANGELES = ("Europe/Paris",), ("America/New_York",), ("America/Los_Angeles",)
WEEKDAYS_AND_SATURDAY = frozenset(range(6))
OFFICE = SendingHours(time(8), time(20), WEEKDAYS_AND_SATURDAY)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def paris(*args) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo("Europe/Paris"))


@pytest.mark.parametrize("when, expected", [
    (paris(2026, 11, 27, 10, 30), paris(2026, 11, 27, 10, 30)),  # Friday morning: now
    (paris(2026, 11, 27, 7, 59), paris(2026, 11, 27, 8, 0)),     # before the start: the start
    (paris(2026, 11, 27, 20, 0), paris(2026, 11, 28, 8, 0)),     # the end is not included
    (paris(2026, 11, 28, 21, 0), paris(2026, 11, 30, 8, 0)),     # Saturday night: not Sunday, Monday
    (paris(2026, 11, 29, 12, 0), paris(2026, 11, 30, 8, 0)),     # Sunday noon: Monday
])
def test_next_allowed_time_in_paris(when, expected):
    assert OFFICE.next_allowed(when, PARIS) == expected


def test_daylight_saving_changes_are_local_time():
    # Spring: Saturday 28 March 2026, 21:00 in Paris (UTC+1); Sunday the clocks go forward.
    # Monday 08:00 is then UTC+2, 06:00 UTC, not 07:00.
    assert OFFICE.next_allowed(paris(2026, 3, 28, 21, 0), PARIS) == utc(2026, 3, 30, 6, 0)
    # Autumn: Saturday 24 October 2026, 20:30 (UTC+2); Monday 08:00 is UTC+1, 07:00 UTC.
    assert OFFICE.next_allowed(paris(2026, 10, 24, 20, 30), PARIS) == utc(2026, 10, 26, 7, 0)
    # New York changes a week later than Paris in autumn (1 November 2026): 08:00 on
    # Saturday 31 October is still UTC-4, on Monday 2 November UTC-5.
    assert OFFICE.next_allowed(utc(2026, 10, 31, 3, 0), NEW_YORK) == utc(2026, 10, 31, 12, 0)
    assert OFFICE.next_allowed(utc(2026, 11, 1, 3, 0), NEW_YORK) == utc(2026, 11, 2, 13, 0)


def test_a_number_across_several_zones_waits_until_allowed_in_all():
    # An Australian mobile may be in Perth (UTC+8) or Sydney (UTC+11 in summer), among others.
    zones = sending_hours.zones_for("+61412345678")
    assert "Australia/Perth" in zones and "Australia/Sydney" in zones
    allowed = OFFICE.next_allowed(utc(2026, 11, 26, 20, 0), zones)
    for zone in zones:
        local = allowed.astimezone(ZoneInfo(zone))
        assert time(8) <= local.time() < time(20) and local.weekday() != 6, zone
    # 08:00 on the Cocos Islands (UTC+6:30), the last of them to wake up; 12:30 in Sydney.
    assert allowed == utc(2026, 11, 27, 1, 30)


def test_zones_come_from_the_number(settings):
    assert sending_hours.zones_for("+33612345678") == PARIS
    assert sending_hours.zones_for("+14155552671") == LOS_ANGELES
    assert sending_hours.zones_for("+12127365000") == NEW_YORK
    settings.CRMSMS_DEFAULT_TIME_ZONE = "Europe/Lisbon"
    assert sending_hours.zones_for("+999123") == ("Europe/Lisbon",)  # unknown: the server's zone
    # Zones are cached per prefix of this many digits: phonenumbers must not look further.
    assert sending_hours.ZONE_PREFIX_DIGITS == phonenumbers.tzdata.TIMEZONE_LONGEST_PREFIX


# --- in a campaign -------------------------------------------------------------------------

@pytest.fixture
def template(db):
    return SmsTemplate.objects.create(name="Promo", module="contacts", body="Hi {{ contact.first_name }}!")


def campaign_to(user, template, numbers, **fields) -> SmsCampaign:
    people = [Contact.objects.create(first_name=f"P{i}", last_name="X", phone_mobile=n, sms_opt_in=True)
              for i, n in enumerate(numbers)]
    campaign = SmsCampaign.objects.create(name="Hours", module="contacts", template=template, created_by=user,
                                          **fields)
    campaigns.add_recipients(campaign, [p.pk for p in people])
    return campaign


def test_generation_sets_each_message_due_in_its_recipients_hours(user, template):
    # Friday 27 November 2026, 05:00 UTC: 06:00 in Paris, midnight in New York, and 21:00 on
    # Thursday in Los Angeles.
    campaign = campaign_to(user, template, ["+33612345678", "+12127365000", "+14155552671"],
                           send_at=utc(2026, 11, 27, 5, 0), respect_hours=True, hours_start=time(8),
                           hours_end=time(20), hours_days="012345")
    campaigns.start_generation(campaign)
    generation.generate(campaign.pk)
    due = dict(campaign.messages.values_list("to_number", "due_at"))
    assert due == {
        "+33612345678": utc(2026, 11, 27, 7, 0),    # 08:00 in Paris (UTC+1)
        "+12127365000": utc(2026, 11, 27, 13, 0),   # 08:00 in New York (UTC-5)
        "+14155552671": utc(2026, 11, 27, 16, 0),   # 08:00 in Los Angeles (UTC-8)
    }
    assert set(campaign.messages.values_list("send_at", flat=True)) == {utc(2026, 11, 27, 5, 0)}


def test_the_worker_holds_back_a_message_outside_the_hours(user, template):
    # A campaign resumed (or retried) outside its hours: the worker must not send. Its hours
    # are every day but today, in Paris, so whatever time the test runs, now is outside.
    today = timezone.localtime(timezone.now(), ZoneInfo("Europe/Paris")).weekday()
    other_days = "".join(str(d) for d in range(7) if d != today)
    campaign = campaign_to(user, template, ["+33612345678"], send_at=timezone.now() - timedelta(days=3),
                           respect_hours=False)
    campaigns.start_generation(campaign)
    generation.generate(campaign.pk)
    SmsCampaign.objects.filter(pk=campaign.pk).update(
        respect_hours=True, hours_start=time(0), hours_end=time(23, 59), hours_days=other_days)
    dispatch.dispatch_once()
    message = campaign.messages.get()
    assert MemoryConnector.outbox == []
    tomorrow = timezone.localtime(timezone.now(), ZoneInfo("Europe/Paris")).date() + timedelta(days=1)
    assert message.status == states.TO_SEND and message.attempts == 0
    assert timezone.localtime(message.due_at, ZoneInfo("Europe/Paris")) == paris(*tomorrow.timetuple()[:3], 0, 0)
    waiting = message.events.get(kind="waiting")
    assert "Outside the campaign's sending hours" in waiting.detail and "Europe/Paris" in waiting.detail
    # Once allowed (here: its hours changed to every day), it leaves.
    SmsCampaign.objects.filter(pk=campaign.pk).update(hours_days="0123456")
    SmsMessage.objects.filter(pk=message.pk).update(due_at=timezone.now())
    dispatch.dispatch_once()
    assert [m.to for m in MemoryConnector.outbox] == ["+33612345678"]


def test_new_campaigns_take_the_settings_hours(settings):
    settings.CRMSMS_SENDING_HOURS = "09:30-19:00"
    settings.CRMSMS_SENDING_DAYS = "mon,tue,wed,thu,fri"
    campaign = SmsCampaign(name="x", module="contacts", send_at=timezone.now())
    assert campaign.sending_hours == SendingHours(time(9, 30), time(19), frozenset(range(5)))
    settings.CRMSMS_SENDING_HOURS = ""
    assert SmsCampaign(name="x", module="contacts", send_at=timezone.now()).sending_hours is None


@pytest.mark.parametrize("value, message", [
    ("8h-20h", "write the hours as HH:MM-HH:MM"),
    ("20:00-08:00", "the start must be before the end"),
])
def test_bad_settings_are_named(value, message):
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match=message):
        sending_hours.parse_window(value)
    with pytest.raises(ImproperlyConfigured, match="'sunday' is not one of mon"):
        sending_hours.parse_days("mon,sunday")


# --- the form and the API ------------------------------------------------------------------

def form_data(template, **changes):
    data = {"name": "Hours", "send_at": "2026-12-01T10:00", "module": "contacts", "template": template.pk,
            "respect_hours": "on", "hours_start": "08:00", "hours_end": "20:00",
            "hours_days": ["mon", "tue", "wed", "thu", "fri", "sat"]}
    return {**data, **changes}


def test_the_form_sets_and_checks_sending_hours(web, template):
    page = web.get("/campaigns/new/").content.decode()
    assert "Sending hours" in page and 'name="hours_days" value="sun"' in page
    bad = web.post("/campaigns/new/", form_data(template, hours_start="21:00", hours_days=[]))
    page = bad.content.decode()
    assert bad.status_code == 200 and not SmsCampaign.objects.exists()
    assert "Sending hours: the end (20:00) must be after the start (21:00)." in page
    assert "Sending hours: tick at least one day." in page
    web.post("/campaigns/new/", form_data(template, hours_start="09:00", hours_days=["mon", "sun"]))
    campaign = SmsCampaign.objects.get()
    assert campaign.sending_hours == SendingHours(time(9), time(20), frozenset({0, 6}))
    # Turned off, the hours are kept for later but not applied.
    web.post(f"/campaigns/{campaign.pk}/edit/", {**form_data(template), "respect_hours": "", "hours_days": [],
                                                 "loaded_at": campaign.updated_at.isoformat()})
    campaign.refresh_from_db()
    assert campaign.sending_hours is None and campaign.hours_days == "06"


def test_the_api_sets_and_checks_sending_hours(api, template, settings):
    settings.CRMSMS_SENDING_HOURS = "08:00-20:00"
    base = {"name": "H", "send_at": "2026-12-01T10:00:00Z", "module": "contacts", "template_id": template.pk}
    created = api.post("/api/v1/campaigns", base).json()
    assert (created["respect_hours"], created["hours_start"], created["hours_end"], created["hours_days"]) == \
        (True, "08:00", "20:00", ["mon", "tue", "wed", "thu", "fri", "sat"])
    changed = api.patch(f"/api/v1/campaigns/{created['id']}", {"hours_start": "10:00", "hours_days": ["sun"]})
    assert changed.status_code == 200, changed.json()
    assert (changed.json()["hours_start"], changed.json()["hours_days"]) == ("10:00", ["sun"])
    bad = api.patch(f"/api/v1/campaigns/{created['id']}", {"hours_end": "07:00"})
    assert bad.status_code == 422
    assert bad.json()["errors"] == [{"field": "hours_end", "rule": "order",
                                     "message": "Sending hours: the end (07:00) must be after the start (10:00)."}]
    assert api.patch(f"/api/v1/campaigns/{created['id']}", {"hours_days": ["someday"]}).status_code == 422


@pytest.mark.parametrize("days, words", [
    (range(6), "Mon–Sat"), (range(7), "every day"), ({0, 2, 6}, "Mon, Wed, Sun"), ({5, 6}, "Sat, Sun"),
    ({0, 1, 2, 4, 5}, "Mon–Wed, Fri, Sat"),
])
def test_days_read_as_people_write_them(days, words):
    assert sending_hours.describe_days(frozenset(days)) == words
    assert str(SendingHours(time(8), time(20), frozenset(days))) == f"08:00–20:00, {words}"


def test_zones_that_never_agree_leave_it_to_the_most_that_do():
    # An Australian mobile with a two-hour window: no moment is 10:00-12:00 from the Cocos
    # Islands (UTC+6:30) to Lord Howe (UTC+11). The eastern states (Brisbane, Sydney,
    # Adelaide, Lord Howe: within 1 h 30 of each other) decide; never the first zone
    # alphabetically (Adelaide alone).
    narrow = SendingHours(time(10), time(12), frozenset(range(7)))
    zones = sending_hours.zones_for("+61412345678")
    allowed = narrow.next_allowed(utc(2026, 11, 26, 20, 0), zones)
    eastern = ["Australia/Brisbane", "Australia/Sydney", "Australia/Adelaide", "Australia/Lord_Howe"]
    for zone in eastern:
        assert time(10) <= allowed.astimezone(ZoneInfo(zone)).time() < time(12), zone


def test_pages_say_what_a_message_waits_for(web, api, user, template):
    far = timezone.now() + timedelta(days=3)
    dispatch_day = timezone.localtime(far, ZoneInfo("Europe/Paris")).weekday()
    # Hours that exclude the day of dispatch: every message waits for the next day.
    days = "".join(str(d) for d in range(7) if d != dispatch_day)
    campaign = campaign_to(user, template, ["+33612345678"], send_at=far, respect_hours=True,
                           hours_start=time(0), hours_end=time(23, 59), hours_days=days)
    campaigns.start_generation(campaign)
    generation.generate(campaign.pk)
    SmsCampaign.objects.filter(pk=campaign.pk).update(status=SmsCampaign.SENDING)
    message = campaign.messages.get()
    assert message.waits_until == message.due_at > message.send_at
    detail = web.get(f"/sms/{message.pk}/").content.decode()
    assert "not before" in detail and "sending hours, in the recipient" in detail
    page = web.get(f"/campaigns/{campaign.pk}/").content.decode()
    assert "Nothing leaves before" in page and "waits until" in page
    listed = web.get("/sms/", {"campaign": campaign.pk}).content.decode()
    assert "waits until" in listed and "Only the SMS of campaign “Hours”" in listed
    assert f'<input type="hidden" name="campaign" value="{campaign.pk}">' in listed  # kept by a search
    api_message = api.get(f"/api/v1/messages/{message.pk}").json()
    assert api_message["due_at"] != api_message["send_at"]


def test_days_are_unique_and_hours_checked_even_when_off(api, template):
    base = {"name": "H", "send_at": "2026-12-01T10:00:00Z", "module": "contacts", "template_id": template.pk}
    created = api.post("/api/v1/campaigns", {**base, "hours_days": ["mon", "mon", "sun", "mon"]})
    assert created.status_code == 201 and created.json()["hours_days"] == ["mon", "sun"]
    off = api.post("/api/v1/campaigns", {**base, "respect_hours": False, "hours_start": "23:00", "hours_end": "01:00"})
    assert off.status_code == 422 and off.json()["errors"][0]["field"] == "hours_end"


def test_zones_match_phonenumbers_for_an_example_mobile_of_every_region(settings):
    """The shortcuts (a one-zone country's code; a cache per prefix) give phonenumbers' own
    answer for every region's example mobile number."""
    import phonenumbers
    from phonenumbers import timezone as number_zones

    checked = 0
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
        if example is None:
            continue
        e164 = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
        expected = tuple(z for z in number_zones.time_zones_for_number(example) if z != number_zones.UNKNOWN_TIMEZONE)
        assert sending_hours.zones_for(e164) == (expected or (settings.CRMSMS_DEFAULT_TIME_ZONE,)), e164
        checked += 1
    assert checked > 200
