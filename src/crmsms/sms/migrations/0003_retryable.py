"""A failed message says whether « Retry failed » may queue it again."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('sms', '0002_sending_hours'),
    ]

    operations = [
        migrations.AddField(
            model_name='smsmessage',
            name='retryable',
            field=models.BooleanField(default=False),
        ),
    ]
