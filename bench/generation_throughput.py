"""How fast « Generate all SMS Messages » writes a campaign's messages, next to the limit:
a raw bulk insert of the same rows with the same database driver, in the same run.

    .venv/bin/python bench/generation_throughput.py [--recipients 100000] [--database-url postgres://...]

crmsms reads each recipient with its record, checks eligibility (opt-in, number valid and
mobile, duplicate numbers), renders the text for it, measures its parts and writes the
messages in batches together with the campaign's progress (so a crash resumes exactly
there). The raw insert writes the same number of rows, already built, with executemany.
Target (issue 4): ratio >= 0.5, peak memory <= 300 MB at 1,000,000 recipients.
"""

import argparse
import resource
import time

from scratch import django_on


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--database-url", default="",
                        help="a PostgreSQL server to use; the benchmark creates and drops its own database there")
    args = parser.parse_args()
    with django_on(args.database_url):
        run(args.recipients)


def run(n: int) -> None:
    from django.db import connection, transaction
    from django.utils import timezone

    from crmsms.crm.models import Contact
    from crmsms.sms import campaigns
    from crmsms.sms.models import CampaignRecipient, SmsCampaign, SmsMessage, SmsTemplate

    Contact.objects.bulk_create(
        (Contact(first_name=f"P{i}", last_name="X", phone_mobile=f"+336{10000000 + i}", sms_opt_in=i % 10 != 0)
         for i in range(n)), batch_size=5000)
    template = SmsTemplate.objects.create(name="Promo", module="contacts",
                                          body='Hi {{ contact.first_name|default:"there" }}, -20% today!')
    now = timezone.now()

    # The limit: the same rows, built in advance, inserted with the driver's executemany.
    table = SmsMessage._meta.db_table
    columns = ["recipient_name", "to_number", "body", "text", "encoding", "segments", "status", "send_at", "due_at",
               "attempts", "provider", "error_code", "error_message", "created_at", "updated_at", "version",
               "claim_token"]
    rows = [(f"P{i} X", f"+336{10000000 + i}", template.body, f"Hi P{i}, -20% today!", "GSM-7", 1, "cancelled",
             now, now, 0, "", "", "", now, now, 1, "") for i in range(n)]
    placeholders = ", ".join(["%s"] * len(columns))
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})"
    start = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        for i in range(0, n, 2000):
            cursor.executemany(sql, rows[i:i + 2000])
    raw = n / (time.perf_counter() - start)
    del rows
    SmsMessage.objects.all().delete()

    campaign = SmsCampaign.objects.create(name="Bench", module="contacts", template=template, send_at=now)
    CampaignRecipient.objects.bulk_create(
        (CampaignRecipient(campaign=campaign, contact_id=pk) for pk in Contact.objects.values_list("pk", flat=True)),
        batch_size=5000)
    campaigns.start_generation(campaign)
    start = time.perf_counter()
    campaigns.generate(campaign.pk)
    ours = n / (time.perf_counter() - start)
    campaign.refresh_from_db()
    assert campaign.generated + campaign.skipped == n == campaign.messages.count(), campaign.generated
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"database: {connection.vendor}, recipients: {n}")
    print(f"raw executemany insert:  {raw:9,.0f} rows/s")
    print(f"crmsms generation:       {ours:9,.0f} messages/s   ratio {ours / raw:.2f}")
    print(f"peak memory of the process: {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
