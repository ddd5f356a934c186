"""The variables a user may put in a message or a template, one registry per module.

The registry is the only list: it feeds the editor's field list, the API
(`GET /api/v1/variables`), validation when a text is saved, and `values_for`, which builds
the flat `dict[str, str]` a text is rendered from. No model object ever reaches the renderer
(DESIGN §5), so a placeholder cannot walk from a contact to its account's owner's password:
only the names below exist.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from django.conf import settings
from django.utils import timezone

from crmsms.crm import phones

CONTACTS = "contacts"
ACCOUNTS = "accounts"
MODULES = {CONTACTS: "Contacts", ACCOUNTS: "Accounts"}
Module = Literal["contacts", "accounts"]


def _text(value) -> str:
    return "" if value is None else str(value)


@dataclass(frozen=True)
class Variable:
    name: str  # what goes between the braces: {{ contact.first_name }}
    label: str  # what the field list shows
    # A record's variable reads one of its fields, named as a Django lookup from the record
    # ("account__name"), so a campaign can read them all in one query as plain values...
    field: str = ""
    shown: Callable[[object], str] = _text  # ...and shows the value this way.
    # The others are the same for every recipient: (sending user, sending date) -> str.
    common: Callable | None = None

    @property
    def placeholder(self) -> str:
        return "{{ " + self.name + " }}"


def _date(user, when) -> str:
    day = timezone.localdate(when) if when is not None else timezone.localdate()
    return day.strftime(settings.CRMSMS_DATE_FORMAT)


_SENDER = [
    Variable("user.first_name", "Sender: first name", common=lambda user, when: _text(user and user.first_name)),
    Variable("user.last_name", "Sender: last name", common=lambda user, when: _text(user and user.last_name)),
    # The day the message leaves (its sending date), as people write it.
    Variable("today", "Date of sending", common=_date),
]

REGISTRY: dict[str, list[Variable]] = {
    CONTACTS: [
        Variable("contact.first_name", "Contact: first name", "first_name"),
        Variable("contact.last_name", "Contact: last name", "last_name"),
        Variable("contact.title", "Contact: title", "title"),
        Variable("contact.email", "Contact: email", "email"),
        Variable("contact.phone_mobile", "Contact: mobile", "phone_mobile", phones.display),
        Variable("contact.account.name", "Contact's account: name", "account__name"),
        Variable("contact.account.billing_city", "Contact's account: city", "account__billing_city"),
        *_SENDER,
    ],
    ACCOUNTS: [
        Variable("account.name", "Account: name", "name"),
        Variable("account.phone_office", "Account: phone", "phone_office", phones.display),
        Variable("account.billing_street", "Account: street", "billing_street"),
        Variable("account.billing_postal_code", "Account: postal code", "billing_postal_code"),
        Variable("account.billing_city", "Account: city", "billing_city"),
        Variable("account.website", "Account: website", "website"),
        *_SENDER,
    ],
}
BY_NAME: dict[str, dict[str, Variable]] = {module: {v.name: v for v in vs} for module, vs in REGISTRY.items()}
NAMES: dict[str, frozenset[str]] = {module: frozenset(by_name) for module, by_name in BY_NAME.items()}


def values_for(record, user, names: frozenset[str] | None = None, when=None) -> dict[str, str]:
    """The flat mapping a text is rendered from, for one recipient: every variable of its
    module, or only `names` (what a compiled text uses: formatting a phone number costs).
    `when` is the sending date, for `today`."""
    by_name = BY_NAME[record.module]
    values = {}
    for name in by_name if names is None else names:
        variable = by_name[name]
        if variable.common:
            values[name] = variable.common(user, when)
        else:
            values[name] = variable.shown(_read(record, variable.field))
    return values


def _read(record, lookup: str):
    """`record`'s value at a Django lookup path; None when a relation on the way is empty."""
    value = record
    for part in lookup.split("__"):
        value = getattr(value, part)
        if value is None:
            return None
    return value
