"""How fast « Generate all SMS Messages » writes a campaign's messages, next to the limit:
a raw bulk insert of the same rows with the same database driver, in the same run.

    .venv/bin/python bench/generation_throughput.py [--recipients 100000 | --large] [--database-url postgres://...]

crmsms reads each recipient with its record, checks eligibility (opt-in, number valid and
mobile, duplicate numbers), renders the text for it, measures its parts and writes the
messages in batches together with the campaign's progress (so a crash resumes exactly
there). The raw insert writes the same rows (same columns, same table and indexes),
already built, with executemany, timing only the inserts.

Generation runs in a fresh process, as in a worker, so its peak memory is its own and not
the benchmark's set-up. Target (issue 4): ratio >= 0.5, peak memory <= 300 MB at
1,000,000 recipients.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from itertools import islice

from report import emit
from scratch import django_on

CHUNK = 5000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--large", action="store_true", help="1,000,000 recipients")
    parser.add_argument("--database-url", default="",
                        help="a PostgreSQL server to use; the benchmark creates and drops its own database there")
    parser.add_argument("--generate", type=int, help=argparse.SUPPRESS)  # the child: generate this campaign
    args = parser.parse_args()
    if args.generate:
        return generate_in_this_process(args.generate)
    with django_on(args.database_url):
        run(1_000_000 if args.large else args.recipients)


def generate_in_this_process(campaign_id: int) -> None:
    import django

    django.setup()
    from crmsms.sms import generation

    start = time.perf_counter()
    if os.environ.get("BENCH_PROFILE"):  # where the time goes, on stderr
        import cProfile
        import pstats

        with cProfile.Profile() as profile:
            generation.generate(campaign_id)
        pstats.Stats(profile, stream=sys.stderr).sort_stats("tottime").print_stats(30)
    else:
        generation.generate(campaign_id)
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_mb": peak_mb}))


def run(n: int) -> None:
    from django.db import connection, connections, transaction
    from django.utils import timezone

    from crmsms.crm.models import Contact
    from crmsms.sms import campaigns
    from crmsms.sms.models import SmsCampaign, SmsMessage, SmsTemplate

    # One in ten has not opted in; one number in a hundred is shared by two contacts.
    people = (Contact(first_name=f"P{i}", last_name="X", phone_mobile=f"+336{10000000 + i - (i % 100 == 2)}",
                      sms_opt_in=i % 10 != 0, number_kind="mobile") for i in range(n))
    while chunk := list(islice(people, CHUNK)):
        Contact.objects.bulk_create(chunk)
    template = SmsTemplate.objects.create(name="Promo", module="contacts",
                                          body='Hi {{ contact.first_name|default:"there" }}, -20% today!')
    now = timezone.now()
    recipients_sql = ("INSERT INTO sms_campaignrecipient (campaign_id, contact_id, added_at) "
                      "SELECT %s, id, %s FROM crm_contact ORDER BY id")

    # The limit: the same rows, built in advance a chunk at a time, inserted with executemany.
    scratch = SmsCampaign.objects.create(name="Raw", module="contacts", template=template, send_at=now,
                                         status=SmsCampaign.CANCELLED)
    # Every column of a message, as the ORM would prepare it, all rows already built.
    fields = [f for f in SmsMessage._meta.concrete_fields if not f.primary_key]
    base = {f.attname: f.get_default() for f in fields}
    base.update(campaign_id=scratch.pk, template_id=template.pk, body=template.body, send_at=now, due_at=now,
                created_at=now, updated_at=now, encoding="GSM-7", segments=1, status="to_send")
    sql = (f"INSERT INTO {SmsMessage._meta.db_table} ({', '.join(f.column for f in fields)}) "
           f"VALUES ({', '.join(['%s'] * len(fields))})")
    ids = iter(Contact.objects.order_by("pk").values_list("pk", flat=True).iterator())
    raw_seconds = 0.0
    with transaction.atomic(), connection.cursor() as cursor:
        while chunk := list(islice(ids, 2000)):
            rows = []
            for pk in chunk:
                values = {**base, "contact_id": pk, "recipient_name": f"P{pk} X", "to_number": f"+336{10000000 + pk}",
                          "text": f"Hi P{pk}, -20% today!"}
                rows.append(tuple(f.get_db_prep_save(values[f.attname], connection) for f in fields))
            start = time.perf_counter()
            cursor.executemany(sql, rows)
            raw_seconds += time.perf_counter() - start
    raw = n / raw_seconds
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {SmsMessage._meta.db_table}")

    campaign = SmsCampaign.objects.create(name="Bench", module="contacts", template=template, send_at=now)
    with connection.cursor() as cursor:
        cursor.execute(recipients_sql, [campaign.pk, connection.ops.adapt_datetimefield_value(now)])
    campaigns.start_generation(campaign)
    connections.close_all()
    child = subprocess.run([sys.executable, __file__, "--generate", str(campaign.pk)],
                           capture_output=True, text=True, env=os.environ)
    if child.returncode:
        sys.exit(child.stderr)
    sys.stderr.write(child.stderr)
    result = json.loads(child.stdout.strip().splitlines()[-1])
    ours = n / result["seconds"]
    campaign.refresh_from_db()
    assert campaign.generated + campaign.skipped == n == campaign.messages.count(), campaign.generated
    print(f"database: {connection.vendor}, recipients: {n:,} ({campaign.generated:,} messages, "
          f"{campaign.skipped:,} skipped)")
    print(f"raw executemany insert:  {raw:9,.0f} rows/s")
    print(f"crmsms generation:       {ours:9,.0f} messages/s   ratio {ours / raw:.2f}   "
          f"({result['seconds']:.1f} s)")
    print(f"peak memory of the generating process: {result['peak_mb']:.0f} MB")
    emit(f"generate_{'sqlite' if connection.vendor == 'sqlite' else 'pg'}{'' if n == 100_000 else f'_{n}'}", ours,
         "msg/s", raw, note=f"{n:,} recipients; raw executemany of the same rows")
    if n >= 1_000_000:
        emit(f"generate_rss_mb{'' if connection.vendor == 'sqlite' else '_pg'}", result["peak_mb"], "MB", 300,
             lower_is_better=True, note=f"peak RSS of the generating process, {n:,} recipients")


if __name__ == "__main__":
    main()
