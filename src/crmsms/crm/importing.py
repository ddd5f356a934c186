"""Importing contacts or accounts from a CSV file, with their « SMS opt in ».

The first line names the columns, by field name or label, in any case ("phone_mobile" or
"Mobile", "sms_opt_in" or "SMS opt in"). A line updates the record whose `id` it gives, or
else the only record of the module with its number; otherwise it creates one. Every line is
checked by the same form as the web UI before anything is written: one bad line and nothing
is imported, and the report names each bad line, its field and the rule.

Consent: a file that ticks « SMS opt in » must say where these people gave it (the reason
goes to each record's consent ledger, source "Import", with the file and line). A number
that replied STOP is never opted in again by a file: its record is imported without the
opt-in, and the report lists it (ticking it again takes the person's new consent, on the
record).
"""

import csv
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction

from crmsms.web import csvfile

from . import consent, phones
from .models import Account, ConsentChange, OptOut

MAX_ROWS = 20_000
# Column titles people type in French spreadsheets, besides the fields' names and labels.
ALIASES = {"nom": "last_name", "prénom": "first_name", "prenom": "first_name", "titre": "title",
           "fonction": "title", "courriel": "email", "e-mail": "email", "portable": "phone_mobile",
           "téléphone": "phone_office", "telephone": "phone_office", "société": "account", "societe": "account",
           "compte": "account", "accepte les sms": "sms_opt_in", "opt-in sms": "sms_opt_in", "ville": "billing_city",
           "rue": "billing_street", "code postal": "billing_postal_code", "pays": "billing_country",
           "site web": "website", "raison sociale": "name"}
YES = {"1", "yes", "y", "true", "x", "oui", "o", "vrai"}
NO = {"0", "no", "n", "false", "non", "faux"}


class ImportRefused(Exception):
    """The file as a whole cannot be imported (no header, unknown columns, too long)."""


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[str] = field(default_factory=list)  # "Line 4: Mobile: ..." (nothing was imported)
    kept_opted_out: list[tuple[int, str]] = field(default_factory=list)  # (line, number) imported without opt-in

    @property
    def imported(self) -> bool:
        return not self.errors


def _columns(header: list[str], form_class) -> dict[int, str]:
    """Column index -> form field name, from the header's names or labels."""
    form = form_class()
    known = {"id": "id"}
    for name, form_field in form.fields.items():
        if name == "consent_reason":
            continue
        known[name.lower()] = name
        known[str(form_field.label or name).lower()] = name
    known.update({alias: name for alias, name in ALIASES.items() if name in form.fields})
    columns, unknown = {}, []
    for index, title in enumerate(header):
        key = title.strip().lower().replace("«", "").replace("»", "").strip()
        if not key:
            continue
        if key not in known:
            unknown.append(title.strip())
        columns[index] = known.get(key, "")
    if unknown:
        names = ", ".join(f"{form.fields[n].label or n} ({n})" for n in form.fields if n != "consent_reason")
        raise ImportRefused(f"CSV file: unknown column(s) {', '.join(map(repr, unknown))}. The columns can be: id, "
                            f"{names}; or their French names (Nom, Prénom, Portable, Société…).")
    if not any(name and name != "id" for name in columns.values()):
        raise ImportRefused("CSV file: the first line must name the columns (e.g. last_name,phone_mobile,sms_opt_in).")
    return columns


def _opt_in(value: str, line: int, label: str) -> bool:
    word = value.strip().lower()
    if word in YES:
        return True
    if word in NO:
        return False
    raise ValidationError(f"Line {line}: {label}: {value.strip()!r} is not yes or no (1/0, true/false, oui/non).")


def import_records(module, text: str, *, user, file_name: str, consent_reason: str) -> ImportReport:
    """Import the CSV `text` into `module` (crm.views.CONTACTS or ACCOUNTS), as `user`."""
    lines = csvfile.lines(text)
    if not any(line.strip() for line in lines):
        raise ImportRefused("CSV file: the file is empty.")
    if len(lines) > MAX_ROWS + 1:
        raise ImportRefused(f"CSV file: at most {MAX_ROWS:,} lines of records ({len(lines) - 1:,} given).")
    reader = csv.reader(lines, delimiter=csvfile.delimiter(lines))
    try:  # (the line a row ends on, as the file counts them: a quoted value may hold a line break)
        rows = [(reader.line_num, row) for row in reader]
    except csv.Error as error:
        raise ImportRefused(f"CSV file: line {reader.line_num + 1} cannot be read as CSV ({error}).") from None
    header = rows[0][1]
    columns = _columns(header, module.form)
    model, phone_field = module.model, module.model.phone_field
    opt_in_label = model._meta.get_field("sms_opt_in").verbose_name
    report = ImportReport()
    checked = []  # (line, form, opt-in reason) of the lines to save
    opted_out = set(OptOut.objects.values_list("number", flat=True))
    seen_numbers: dict[str, int] = {}  # number -> the line that has it, for lines without an id
    lines = []  # (line, the row's values by field)
    for line, row in rows[1:]:
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(header) and any(cell.strip() for cell in row[len(header):]):
            report.errors.append(f"Line {line}: {len(row)} values for {len(header)} columns: a value containing "
                                 f"the separator must be in double quotes.")
            continue
        lines.append((line, {columns[i]: cell.strip() for i, cell in enumerate(row) if columns.get(i)}))
    existing = _Existing(model, [values for _, values in lines])
    for line, values in lines:
        try:
            instance = existing.of(values, line)
            data = _form_data(module.form, instance, values, line, opt_in_label)
        except ValidationError as error:
            report.errors.append(error.messages[0])
            continue
        number = _normalised(data.get(phone_field, ""))
        if number and not values.get("id"):
            if number in seen_numbers:
                report.errors.append(f"Line {line}: {number} is also on line {seen_numbers[number]}: one line per "
                                     "record (or give each line the id of the record it updates).")
                continue
            seen_numbers[number] = line
        if data.get("sms_opt_in") and number in opted_out and not (instance and instance.sms_opt_in):
            data["sms_opt_in"] = False
            report.kept_opted_out.append((line, number))
        before = _values(instance, module.form)
        form = module.form(data, instance=instance)
        if not form.is_valid():
            for name, messages in form.errors.items():
                label = form.fields[name].label if name in form.fields else ""
                given = values.get(name, "")
                for message in messages:
                    prefix = f"{label}: " if label and not message.startswith(f"{label}:") else ""
                    report.errors.append(f"Line {line}: {prefix}{message}" + (f" (the file says {given!r})" if given
                                                                                 else ""))
            continue
        # Changed for real: what the form would store differs (a number typed another way is
        # the same number once normalised).
        # (form.instance already holds the file's values: what it had is in `before`.)
        ticked = bool(form.instance.sms_opt_in) and not (before and before["sms_opt_in"])
        checked.append((line, form, before is None or _values(form.instance, module.form) != before, ticked))
    ticks = [line for line, _, _, ticked in checked if ticked]
    if ticks and not consent_reason.strip():
        report.errors.insert(0, f"Where these people gave their consent: required, since the file ticks « {opt_in_label} » "
                                f"({len(ticks)} record(s), first on line {ticks[0]}).")
    if report.errors:
        return report
    with transaction.atomic():
        # Looked at again now: a number may have replied STOP while the file was checked.
        opted_out = set(OptOut.objects.values_list("number", flat=True))
        for line, form, changed, ticked in checked:
            number = getattr(form.instance, phone_field)
            if ticked and number in opted_out:
                form.instance.sms_opt_in = False
                report.kept_opted_out.append((line, number))
            if not changed:
                report.unchanged += 1
                continue
            created = form.instance.pk is None
            where = f"{file_name}, line {line}"
            reason = f"{consent_reason.strip()} ({where})" if consent_reason.strip() else where
            with consent.acting(ConsentChange.IMPORT, user.get_username(), reason):
                form.save()
            report.created += created
            report.updated += not created
    return report


def _values(instance, form_class) -> dict | None:
    if instance is None:
        return None
    return {name: getattr(instance, instance._meta.get_field(name).attname) for name in form_class._meta.fields}


def _normalised(number: str) -> str:
    try:
        return phones.normalise(number, field_label="") if number else ""
    except ValidationError:
        return ""  # the form names the bad number


class _Existing:
    """The records the file's lines update, read a few hundred at a time, not one query per line."""

    CHUNK = 500

    def __init__(self, model, rows: list[dict]) -> None:
        self.model, self.phone_field = model, model.phone_field
        ids = sorted({int(v["id"]) for v in rows if v.get("id", "").isdigit()})
        numbers = sorted({n for v in rows if not v.get("id") and (n := _normalised(v.get(self.phone_field, "")))})
        self.by_id, self.by_number = {}, {}
        for i in range(0, len(ids), self.CHUNK):
            self.by_id.update(model.objects.in_bulk(ids[i:i + self.CHUNK]))
        for i in range(0, len(numbers), self.CHUNK):
            for record in model.objects.filter(**{f"{self.phone_field}__in": numbers[i:i + self.CHUNK]}):
                self.by_number.setdefault(getattr(record, self.phone_field), []).append(record)

    def of(self, values: dict, line: int):
        """The record a line updates: by id, else the only one with its number; or None."""
        name = self.model._meta.verbose_name
        if values.get("id"):
            if not values["id"].isdigit():
                raise ValidationError(f"Line {line}: id: {values['id']!r} is not a record id.")
            record = self.by_id.get(int(values["id"]))
            if record is None:
                raise ValidationError(f"Line {line}: id: no {name} with id {values['id']}.")
            return record
        number = _normalised(values.get(self.phone_field, ""))
        matches = self.by_number.get(number, []) if number else []
        if len(matches) > 1:
            raise ValidationError(f"Line {line}: several {self.model._meta.verbose_name_plural} have the number "
                                  f"{number}: give the id of the one to update in an id column.")
        return matches[0] if matches else None


def _form_data(form_class, instance, values: dict, line: int, opt_in_label: str) -> dict:
    """What the form gets: the record's current values, then the file's."""
    current = _values(instance, form_class) or {}
    data = {name: "" if current.get(name) is None else current[name] for name in form_class._meta.fields}
    for name, value in values.items():
        if name == "id":
            continue
        if name == "sms_opt_in":
            if value.strip():  # an empty cell leaves the opt-in as it is (a new record: not ticked)
                data[name] = _opt_in(value, line, opt_in_label)
        elif name == "account":
            data[name] = _account_id(value, line)
        else:
            data[name] = value
    if not data.get("sms_opt_in"):
        data.pop("sms_opt_in", None)  # an unticked checkbox is absent from a form's data
    return data


def _account_id(value: str, line: int):
    """A contact's account, by its name (or id) in the file."""
    if not value:
        return ""
    if value.isdigit() and Account.objects.filter(pk=int(value)).exists():
        return int(value)
    matches = list(Account.objects.filter(name__iexact=value).values_list("pk", flat=True)[:2])
    if len(matches) != 1:
        raise ValidationError(f"Line {line}: Account: {'no' if not matches else 'more than one'} account named "
                              f"{value!r}.")
    return matches[0]
