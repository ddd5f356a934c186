"""Phone numbers: the one place that reads what a user typed and turns it into E.164.

A number typed without "+" is read in CRMSMS_DEFAULT_REGION (a French user types
06 12 34 56 78). Numbers are stored as E.164 (+33612345678) so that comparing, deduplicating
and sending never depend on how someone typed them.
"""

from dataclasses import dataclass

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from phonenumbers import NumberParseException, PhoneNumberType

# What a stored number is, as a short code kept on its record (`number_kind`, set when the
# record is saved) so that a campaign of a million recipients does not parse a million
# numbers: phonenumbers takes about 20 µs a number, a campaign's whole budget per message.
NONE, INVALID, MOBILE = "none", "invalid", "mobile"
_KIND_OF_TYPE = {
    PhoneNumberType.MOBILE: MOBILE,
    # What North American numbers are: the numbering plan does not tell them apart.
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "fixed_or_mobile",
    PhoneNumberType.FIXED_LINE: "landline",
    PhoneNumberType.TOLL_FREE: "toll_free",
    PhoneNumberType.PREMIUM_RATE: "premium_rate",
    PhoneNumberType.SHARED_COST: "shared_cost",
    PhoneNumberType.VOIP: "voip",
    PhoneNumberType.PERSONAL_NUMBER: "personal",
    PhoneNumberType.PAGER: "pager",
    PhoneNumberType.UAN: "company",
    PhoneNumberType.VOICEMAIL: "voicemail",
}
# Kinds that can receive an SMS.
SMS_KINDS = frozenset({MOBILE, "fixed_or_mobile"})
KIND_WORDS = {
    NONE: "no number", INVALID: "not a valid phone number", MOBILE: "mobile", "fixed_or_mobile": "mobile",
    "landline": "a landline", "toll_free": "a toll-free number", "premium_rate": "a premium-rate number",
    "shared_cost": "a shared-cost number", "voip": "a VoIP number", "personal": "a personal number",
    "pager": "a pager number", "company": "a company number", "voicemail": "a voicemail number",
}


@dataclass(frozen=True)
class PhoneCheck:
    """What we know about a stored number, for eligibility."""

    e164: str
    valid: bool
    sms_capable: bool
    kind: str  # "mobile", "a landline", ...


def normalise(raw: str, *, field_label: str, region: str | None = None) -> str:
    """Return `raw` as E.164, or "" when empty. Raise ValidationError naming the field."""
    value = (raw or "").strip()
    if not value:
        return ""
    region = region or settings.CRMSMS_DEFAULT_REGION
    try:
        number = phonenumbers.parse(value, None if value.startswith("+") else region)
    except NumberParseException:
        raise ValidationError(
            f"{field_label}: “{value}” is not a phone number. Type it as +33612345678, "
            f"or in the national format of {region} (+{phonenumbers.country_code_for_region(region)}).",
            code="invalid_phone",
        ) from None
    if not phonenumbers.is_valid_number(number):
        raise ValidationError(
            f"{field_label}: “{value}” is not a valid phone number (check the country code "
            f"and the number of digits).",
            code="invalid_phone",
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def require_mobile(e164: str, *, field_label: str) -> None:
    """Refuse a number that cannot receive SMS in a field meant for a mobile."""
    check = inspect(e164)
    if e164 and not check.sms_capable:
        raise ValidationError(
            f"{field_label}: {e164} is {check.kind}, which cannot receive SMS. Enter a mobile number.",
            code="not_mobile",
        )


def kind(e164: str) -> str:
    """The kind of a stored number: NONE, INVALID, MOBILE, "landline", ... (KIND_WORDS)."""
    if not e164:
        return NONE
    try:
        number = phonenumbers.parse(e164, None)
    except NumberParseException:
        return INVALID
    # number_type() is UNKNOWN exactly when is_valid_number() is False: one pass, not two.
    return _KIND_OF_TYPE.get(phonenumbers.number_type(number), INVALID)


def inspect(e164: str) -> PhoneCheck:
    code = kind(e164)
    valid = code not in (NONE, INVALID)
    return PhoneCheck(e164, valid, code in SMS_KINDS, KIND_WORDS[code] if valid else "not a valid phone number")


def display(e164: str) -> str:
    """+33612345678 -> +33 6 12 34 56 78, for people to read."""
    if not e164:
        return ""
    try:
        return phonenumbers.format_number(
            phonenumbers.parse(e164, None), phonenumbers.PhoneNumberFormat.INTERNATIONAL
        )
    except NumberParseException:
        return e164
