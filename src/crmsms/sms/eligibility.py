"""Whether a contact or an account can receive an SMS, and if not, why (in words a user can
act on). Checked when a message is set to "Send SMS" and again by the worker just before
sending: an opt-in withdrawn in between means the message is skipped, never sent."""

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
    number = record.sms_number
    if not number:
        return Refusal("no_number", f"{record} has no number in the {label} field.")
    info = phones.inspect(number)
    if not info.valid:
        return Refusal("invalid_number", f"The {label} of {record} ({number}) is not a valid phone number.")
    if not info.sms_capable:
        return Refusal("not_mobile", f"The {label} of {record} ({info.e164}) is {info.kind}: it cannot receive SMS.")
    if not record.sms_opt_in:
        return Refusal("no_opt_in", f"{record} has not opted in to SMS (« SMS opt in » is not ticked).")
    return None
