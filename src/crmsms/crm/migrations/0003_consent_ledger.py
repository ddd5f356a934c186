"""The consent ledger, and the numbers that asked for no more SMS."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('crm', '0002_number_kind'),
    ]

    operations = [
        migrations.CreateModel(
            name='OptOut',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('number', models.CharField(max_length=20, unique=True)),
                ('since', models.DateTimeField(auto_now_add=True)),
                ('source', models.CharField(choices=[('ui', 'Web UI'), ('api', 'REST API'), ('import', 'Import'), ('inbound_stop', 'Replied STOP'), ('inbound_start', 'Replied START'), ('provider', 'Provider'), ('system', 'System')], max_length=20)),
                ('detail', models.TextField(blank=True)),
            ],
        ),
        migrations.CreateModel(
            name='ConsentChange',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('number', models.CharField(blank=True, max_length=20)),
                ('opt_in', models.BooleanField()),
                ('source', models.CharField(choices=[('ui', 'Web UI'), ('api', 'REST API'), ('import', 'Import'), ('inbound_stop', 'Replied STOP'), ('inbound_start', 'Replied START'), ('provider', 'Provider'), ('system', 'System')], max_length=20)),
                ('actor', models.CharField(blank=True, max_length=150)),
                ('reason', models.TextField(blank=True)),
                ('at', models.DateTimeField(auto_now_add=True)),
                ('account', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='consent', to='crm.account')),
                ('contact', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='consent', to='crm.contact')),
            ],
            options={
                'ordering': ['-at', '-id'],
            },
        ),
    ]
