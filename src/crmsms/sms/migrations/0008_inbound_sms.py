"""SMS people send us: replies, STOP, START, HELP."""

import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('sms', '0007_delivery_reports'),
    ]

    operations = [
        migrations.CreateModel(
            name='InboundSms',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('provider', models.CharField(max_length=30)),
                ('provider_message_id', models.CharField(blank=True, max_length=100)),
                ('from_number', models.CharField(db_index=True, max_length=20)),
                ('to_number', models.CharField(blank=True, max_length=20)),
                ('text', models.TextField()),
                ('keyword', models.CharField(blank=True, max_length=10)),
                ('received_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('payload', models.JSONField(default=dict)),
            ],
            options={
                'ordering': ['-received_at', '-id'],
            },
        ),
    ]
