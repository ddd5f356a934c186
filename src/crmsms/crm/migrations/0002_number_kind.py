"""Records remember what kind of number they hold (see crm.models.Recipient)."""

from collections import defaultdict

from django.db import migrations, models

from crmsms.crm import phones


def work_out_kinds(apps, schema_editor):
    for model_name, field in (("Contact", "phone_mobile"), ("Account", "phone_office")):
        model = apps.get_model("crm", model_name)
        numbers_by_kind = defaultdict(list)
        for number in model.objects.values_list(field, flat=True).distinct().iterator():
            numbers_by_kind[phones.kind(number)].append(number)
        for kind, numbers in numbers_by_kind.items():
            for i in range(0, len(numbers), 5000):
                model.objects.filter(**{f"{field}__in": numbers[i:i + 5000]}).update(number_kind=kind)


class Migration(migrations.Migration):

    dependencies = [
        ('crm', '0001_initial'),
    ]

    operations = [
        migrations.AddField(
            model_name='account',
            name='number_kind',
            field=models.CharField(blank=True, editable=False, max_length=20),
        ),
        migrations.AddField(
            model_name='contact',
            name='number_kind',
            field=models.CharField(blank=True, editable=False, max_length=20),
        ),
        migrations.RunPython(work_out_kinds, migrations.RunPython.noop),
    ]
