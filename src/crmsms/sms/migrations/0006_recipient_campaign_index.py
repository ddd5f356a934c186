"""A campaign's recipients are indexed in id order, the order generation reads them in."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('crm', '0002_number_kind'),
        ('sms', '0005_campaign_activity'),
    ]

    operations = [
        migrations.AlterField(
            model_name='campaignrecipient',
            name='campaign',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='recipients', to='sms.smscampaign'),
        ),
        migrations.AddIndex(
            model_name='campaignrecipient',
            index=models.Index(fields=['campaign', 'id'], name='recipient_campaign_idx'),
        ),
    ]
