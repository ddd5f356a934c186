"""How fast the pages answer with a million messages and 100,000 contacts, and how many
queries they make, next to the limit: 100 ms, and the same page's rows read with one raw
SELECT.

    .venv/bin/python bench/campaign_pages.py [--messages 1000000] [--contacts 100000] [--database-url postgres://...]

Builds messages / contacts campaigns (10 by default) to the same contacts through the real
generation, so each contact has that many messages; gives the messages a realistic mix of
statuses over a few hours; then requests the pages through Django's test client, logged in,
as a browser would (the first request of each warms the caches, the next 20 are timed).
The campaign pages are those of the first campaign; `--contacts` equal to `--messages`
gives one campaign of them all.
"""

import argparse
import statistics
import time

from report import emit
from scratch import django_on

RUNS = 20  # requests per page; the p95 of them is reported


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    if not 0 < args.contacts <= args.messages:
        parser.error("--contacts must be between 1 and --messages")
    with django_on(args.database_url):
        run(args.messages, args.contacts)


def build(n: int, people_count: int):
    from datetime import timedelta
    from itertools import islice

    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.utils import timezone

    from crmsms.crm.models import Contact
    from crmsms.sms import campaigns, generation
    from crmsms.sms.models import SmsCampaign, SmsMessage, SmsTemplate

    people = (Contact(first_name=f"P{i}", last_name="X", phone_mobile=f"+336{10000000 + i}",
                      sms_opt_in=i % 20 != 0, number_kind="mobile") for i in range(people_count))
    while chunk := list(islice(people, 5000)):
        Contact.objects.bulk_create(chunk)
    user = get_user_model().objects.create_superuser("bench", password="bench-pages-1")
    template = SmsTemplate.objects.create(name="Promo", module="contacts", body="Hi {{ contact.first_name }}!")
    start = timezone.now() - timedelta(hours=3)
    built = []
    for number in range(-(-n // people_count)):  # ceil: the last campaign may have fewer recipients
        size = min(people_count, n - number * people_count)
        campaign = SmsCampaign.objects.create(name=f"Big {number + 1}", module="contacts", template=template,
                                              send_at=start, created_by=user, respect_hours=False)
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO sms_campaignrecipient (campaign_id, contact_id, added_at) "
                           f"SELECT %s, id, %s FROM crm_contact ORDER BY id LIMIT {size}",
                           [campaign.pk, connection.ops.adapt_datetimefield_value(start)])
        campaigns.start_generation(campaign)
        generation.generate(campaign.pk)
        built.append(campaign)
    campaign = built[0]
    # A campaign three hours into sending: most delivered, some sent awaiting a report,
    # some failed or undelivered, the last ones still to send. Statuses spread over time.
    table = SmsMessage._meta.db_table
    stamp = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        for status, lo, hi in [("delivered", 0, 70), ("sent", 70, 80), ("undelivered", 80, 83), ("failed", 83, 85)]:
            for hour in range(3):
                cursor.execute(
                    f"UPDATE {table} SET status = %s, sent_at = %s, updated_at = %s "
                    f"WHERE status = 'to_send' AND id %% 100 >= %s AND id %% 100 < %s "
                    f"AND id %% 3 = %s",
                    [status, stamp(start + timedelta(hours=hour, minutes=30)),
                     stamp(start + timedelta(hours=hour, minutes=31)), lo, hi, hour])
    # Statuses were set by hand above: count them, and their activity over time, as the
    # kept counts would have.
    for each in built:
        campaigns.recount(each)
    if connection.vendor == "postgresql":
        # A million statuses changed in one go leave as many dead index entries; in real
        # life they change over hours and autovacuum keeps up. Measure that steady state.
        connection.ensure_connection()
        with connection.cursor() as cursor:
            cursor.execute(f"VACUUM ANALYZE {table}")
    from django.db.models import Count

    from crmsms.sms.models import CampaignActivity
    for each in built:
        CampaignActivity.objects.bulk_create(
            CampaignActivity(campaign=each, minute=minute, status=status, n=count)
            for minute, status, count in each.messages.filter(sent_at__isnull=False)
            .values_list("sent_at", "status").annotate(count=Count("id")).order_by())
    campaigns.tick()
    return user, campaign


def run(n: int, people_count: int) -> None:
    from django.db import connection, reset_queries
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from crmsms.sms.models import SmsMessage

    started = time.perf_counter()
    user, campaign = build(n, people_count)
    print(f"database: {connection.vendor}, {SmsMessage.objects.count():,} messages to {people_count:,} contacts; "
          f"the campaign measured has {campaign.messages.count():,} (built in {time.perf_counter() - started:.0f} s)")
    client = Client()
    client.force_login(user)
    some_contact = campaign.messages.order_by("id").values_list("contact_id", flat=True)[people_count // 2]
    from crmsms.users.models import ApiToken

    token = ApiToken.issue(user)
    pages = [
        ("campaign page", f"/campaigns/{campaign.pk}/", "page_p95_campaign"),
        ("campaign page, SMS page 2,000", f"/campaigns/{campaign.pk}/?page=2000", ""),
        ("campaign page, failed only", f"/campaigns/{campaign.pk}/?status=failed", ""),
        ("SMS Messages module, this campaign", f"/sms/?campaign={campaign.pk}", ""),
        ("campaign list", "/campaigns/", ""),
        ("a recipient's contact page", f"/contacts/{some_contact}/", "page_p95_contact"),
        ("API: GET /api/v1/messages", "/api/v1/messages?limit=50", "page_p95_api_messages"),
        ("API: messages of one contact", f"/api/v1/messages?contact_id={some_contact}", ""),
    ]
    # One page of the campaign's messages, read with one raw SELECT: what a page costs the
    # database (the pages are measured against the issue's 100 ms, below).
    with connection.cursor() as cursor:
        raw = []
        for _ in range(6):
            start = time.perf_counter()
            cursor.execute("SELECT * FROM sms_smsmessage WHERE campaign_id = %s ORDER BY id LIMIT 25",
                           [campaign.pk])
            cursor.fetchall()
            raw.append(time.perf_counter() - start)
    raw_ms = statistics.median(raw[1:]) * 1000
    print(f"raw SELECT of one page of 25 messages: {raw_ms:.1f} ms")
    suffix = "" if connection.vendor == "sqlite" else "_pg"
    for label, url, name in pages:
        times, counts = [], set()
        for attempt in range(RUNS + 1):
            reset_queries()
            with CaptureQueriesContext(connection) as queries:
                start = time.perf_counter()
                response = client.get(url, headers={"Authorization": f"Bearer {token}"})
                elapsed = time.perf_counter() - start
            assert response.status_code == 200, (url, response.status_code)
            if attempt:  # the first warms the caches
                times.append(elapsed)
                counts.add(len(queries))
        times.sort()
        p95 = times[max(0, round(len(times) * 0.95) - 1)] * 1000
        print(f"{label:38} median {statistics.median(times) * 1000:7.1f} ms  p95 {p95:7.1f} ms  "
              f"{'/'.join(map(str, sorted(counts)))} queries")
        if name:
            emit(f"{name}{suffix}", p95, "ms", 100, lower_is_better=True,
                 note=f"{n:,} messages, {people_count:,} contacts, "
                      f"{len(counts) == 1 and 'constant' or 'varying'} query count")


if __name__ == "__main__":
    main()
