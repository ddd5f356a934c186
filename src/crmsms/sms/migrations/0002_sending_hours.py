"""Campaigns get sending hours; those that existed before keep sending at any hour."""

from django.db import migrations, models

import crmsms.sms.sending_hours


def existing_campaigns_keep_any_hour(apps, schema_editor):
    apps.get_model("sms", "SmsCampaign").objects.update(respect_hours=False)


class Migration(migrations.Migration):

    dependencies = [
        ('sms', '0001_initial'),
    ]

    operations = [
        migrations.AddField(
            model_name='smscampaign',
            name='hours_days',
            field=models.CharField(default=crmsms.sms.sending_hours.default_days, max_length=7, verbose_name='on'),
        ),
        migrations.AddField(
            model_name='smscampaign',
            name='hours_end',
            field=models.TimeField(default=crmsms.sms.sending_hours.default_end, verbose_name='until'),
        ),
        migrations.AddField(
            model_name='smscampaign',
            name='hours_start',
            field=models.TimeField(default=crmsms.sms.sending_hours.default_start, verbose_name='Sending hours from'),
        ),
        migrations.AddField(
            model_name='smscampaign',
            name='respect_hours',
            field=models.BooleanField(default=crmsms.sms.sending_hours.on_by_default, verbose_name='Only during sending hours'),
        ),
        migrations.RunPython(existing_campaigns_keep_any_hour, migrations.RunPython.noop),
    ]
