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


@dataclass(frozen=True)
class Variable:
    name: str  # what goes between the braces: {{ contact.first_name }}
    label: str  # what the field list shows
    value: Callable  # (record, sending user, sending date) -> str

    @property
    def placeholder(self) -> str:
        return "{{ " + self.name + " }}"


def _date(when) -> str:
    day = timezone.localdate(when) if when is not None else timezone.localdate()
    return day.strftime(settings.CRMSMS_DATE_FORMAT)


def _text(value) -> str:
    return "" if value is None else str(value)


_SENDER = [
    Variable("user.first_name", "Sender: first name", lambda record, user, when: _text(user and user.first_name)),
    Variable("user.last_name", "Sender: last name", lambda record, user, when: _text(user and user.last_name)),
    # The day the message leaves (its sending date), as people write it.
    Variable("today", "Date of sending", lambda record, user, when: _date(when)),
]

REGISTRY: dict[str, list[Variable]] = {
    CONTACTS: [
        Variable("contact.first_name", "Contact: first name", lambda c, u, w: _text(c.first_name)),
        Variable("contact.last_name", "Contact: last name", lambda c, u, w: _text(c.last_name)),
        Variable("contact.title", "Contact: title", lambda c, u, w: _text(c.title)),
        Variable("contact.email", "Contact: email", lambda c, u, w: _text(c.email)),
        Variable("contact.phone_mobile", "Contact: mobile", lambda c, u, w: phones.display(c.phone_mobile)),
        Variable("contact.account.name", "Contact's account: name",
                 lambda c, u, w: _text(c.account.name) if c.account_id else ""),
        Variable("contact.account.billing_city", "Contact's account: city",
                 lambda c, u, w: _text(c.account.billing_city) if c.account_id else ""),
        *_SENDER,
    ],
    ACCOUNTS: [
        Variable("account.name", "Account: name", lambda a, u, w: _text(a.name)),
        Variable("account.phone_office", "Account: phone", lambda a, u, w: phones.display(a.phone_office)),
        Variable("account.billing_street", "Account: street", lambda a, u, w: _text(a.billing_street)),
        Variable("account.billing_postal_code", "Account: postal code", lambda a, u, w: _text(a.billing_postal_code)),
        Variable("account.billing_city", "Account: city", lambda a, u, w: _text(a.billing_city)),
        Variable("account.website", "Account: website", lambda a, u, w: _text(a.website)),
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
    return {name: by_name[name].value(record, user, when) for name in (by_name if names is None else names)}
