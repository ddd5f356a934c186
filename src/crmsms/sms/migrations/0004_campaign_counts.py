"""Campaigns keep their counts per status; a campaign's messages are indexed for its pages."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def count_existing_campaigns(apps, schema_editor):
    from django.db.models import Count

    SmsMessage = apps.get_model("sms", "SmsMessage")
    CampaignCount = apps.get_model("sms", "CampaignCount")
    rows = SmsMessage.objects.filter(campaign__isnull=False).values_list("campaign_id", "status") \
        .annotate(n=Count("id")).order_by()
    CampaignCount.objects.bulk_create([CampaignCount(campaign_id=c, status=s, n=n) for c, s, n in rows])


class Migration(migrations.Migration):

    dependencies = [
        ('crm', '0002_number_kind'),
        ('sms', '0003_retryable'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='CampaignCount',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('status', models.CharField(choices=[('draft', 'Draft'), ('to_send', 'To be sent'), ('sending', 'Sending'), ('sent', 'Sent'), ('delivered', 'Delivered'), ('undelivered', 'Undelivered'), ('failed', 'Failed'), ('unknown', 'Unknown'), ('skipped', 'Skipped'), ('cancelled', 'Cancelled')], max_length=12)),
                ('n', models.BigIntegerField(default=0)),
            ],
        ),
        migrations.AlterField(
            model_name='smsmessage',
            name='campaign',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='messages', to='sms.smscampaign'),
        ),
        migrations.AddIndex(
            model_name='smsmessage',
            index=models.Index(fields=['campaign', 'id'], name='sms_campaign_idx'),
        ),
        migrations.AddIndex(
            model_name='smsmessage',
            index=models.Index(fields=['campaign', 'status', 'id'], name='sms_campaign_status_idx'),
        ),
        migrations.AddField(
            model_name='campaigncount',
            name='campaign',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='counts', to='sms.smscampaign'),
        ),
        migrations.AddConstraint(
            model_name='campaigncount',
            constraint=models.UniqueConstraint(fields=('campaign', 'status'), name='campaign_count_unique'),
        ),
            migrations.RunPython(count_existing_campaigns, migrations.RunPython.noop),
    ]
