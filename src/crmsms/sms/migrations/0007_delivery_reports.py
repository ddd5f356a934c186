"""Delivery reports, stored as they come, then applied to their messages."""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

import crmsms.sms.sending_hours


class Migration(migrations.Migration):

    dependencies = [
        ('sms', '0006_recipient_campaign_index'),
    ]

    operations = [
        migrations.AlterField(
            model_name='smscampaign',
            name='hours_days',
            field=models.CharField(default=crmsms.sms.sending_hours.default_days, max_length=7, verbose_name='Days'),
        ),
        migrations.AlterField(
            model_name='smscampaign',
            name='hours_end',
            field=models.TimeField(default=crmsms.sms.sending_hours.default_end, verbose_name='Until'),
        ),
        migrations.AlterField(
            model_name='smscampaign',
            name='hours_start',
            field=models.TimeField(default=crmsms.sms.sending_hours.default_start, verbose_name='From'),
        ),
        migrations.CreateModel(
            name='DeliveryReport',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('provider', models.CharField(max_length=30)),
                ('reference', models.CharField(blank=True, max_length=100)),
                ('provider_message_id', models.CharField(blank=True, max_length=100)),
                ('status', models.CharField(max_length=30)),
                ('payload', models.JSONField(default=dict)),
                ('received_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('processed_at', models.DateTimeField(blank=True, null=True)),
                ('outcome', models.CharField(blank=True, max_length=200)),
                ('message', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='reports', to='sms.smsmessage')),
            ],
            options={
                'indexes': [models.Index(condition=models.Q(('processed_at__isnull', True)), fields=['id'], name='report_pending_idx')],
            },
        ),
    ]
