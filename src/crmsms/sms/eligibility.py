"""Whether a contact or an account can receive an SMS, and if not, why (in words a user can
act on). Checked when a message is set to "Send SMS", for every recipient of a campaign
when its messages are generated, and again by the worker just before sending: an opt-in
withdrawn in between means the message is skipped, never sent."""

from dataclasses import dataclass

from crmsms.crm import phones


@dataclass(frozen=True)
class Refusal:
    code: str  # no_number, invalid_number, not_mobile, no_opt_in, record_deleted
    message: str


def check(record) -> Refusal | None:
    if record is None:
        return Refusal("record_deleted", "The contact or account was deleted.")
    label = record._meta.get_field(record.phone_field).verbose_name
    # One record: its number is looked at afresh (it may have changed since the record's
    # number_kind was worked out), which is what the worker does just before sending.
    return refusal(str(record), label, record.sms_number, "", record.sms_opt_in)


def refusal(name: str, label: str, number: str, kind: str, opt_in: bool) -> Refusal | None:
    """The rule itself, from a record's values: `label` names its number's field, `kind` is
    the number kind stored on the record. A campaign's generation trusts a stored "mobile"
    (the worker checks the number again before sending), and looks again at anything else,
    so a stale kind can never cost someone their message."""
    if not number:
        return Refusal("no_number", f"{name} has no number in the {label} field.")
    if kind not in phones.SMS_KINDS:
        kind = phones.kind(number)
    if kind == phones.INVALID:
        return Refusal("invalid_number", f"The {label} of {name} ({number}) is not a valid phone number.")
    if kind not in phones.SMS_KINDS:
        words = phones.KIND_WORDS.get(kind, "not a mobile number")
        return Refusal("not_mobile", f"The {label} of {name} ({number}) is {words}: it cannot receive SMS.")
    if not opt_in:
        return Refusal("no_opt_in", f"{name} has not opted in to SMS (« SMS opt in » is not ticked).")
    return None
