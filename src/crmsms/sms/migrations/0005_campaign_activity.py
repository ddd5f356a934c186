"""A campaign keeps, per minute, how many of its messages reached each status (its chart);
its retryable failures are indexed."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('crm', '0002_number_kind'),
        ('sms', '0004_campaign_counts'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='CampaignActivity',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('minute', models.DateTimeField()),
                ('status', models.CharField(choices=[('draft', 'Draft'), ('to_send', 'To be sent'), ('sending', 'Sending'), ('sent', 'Sent'), ('delivered', 'Delivered'), ('undelivered', 'Undelivered'), ('failed', 'Failed'), ('unknown', 'Unknown'), ('skipped', 'Skipped'), ('cancelled', 'Cancelled')], max_length=12)),
                ('n', models.BigIntegerField(default=0)),
            ],
        ),
        migrations.AddIndex(
            model_name='smsmessage',
            index=models.Index(condition=models.Q(('retryable', True), ('status', 'failed')), fields=['campaign'], name='sms_retryable_idx'),
        ),
        migrations.AddField(
            model_name='campaignactivity',
            name='campaign',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='activity', to='sms.smscampaign'),
        ),
        migrations.AddConstraint(
            model_name='campaignactivity',
            constraint=models.UniqueConstraint(fields=('campaign', 'minute', 'status'), name='campaign_activity_unique'),
        ),
    ]
