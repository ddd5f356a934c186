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

# Types that can receive an SMS. FIXED_LINE_OR_MOBILE is what North American numbers are:
# the numbering plan does not tell them apart.
SMS_CAPABLE = {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE}

_TYPE_NAMES = {
    PhoneNumberType.FIXED_LINE: "a landline",
    PhoneNumberType.TOLL_FREE: "a toll-free number",
    PhoneNumberType.PREMIUM_RATE: "a premium-rate number",
    PhoneNumberType.SHARED_COST: "a shared-cost number",
    PhoneNumberType.VOIP: "a VoIP number",
    PhoneNumberType.PAGER: "a pager number",
    PhoneNumberType.UAN: "a company number",
    PhoneNumberType.VOICEMAIL: "a voicemail number",
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


def inspect(e164: str) -> PhoneCheck:
    try:
        number = phonenumbers.parse(e164, None)
    except NumberParseException:
        return PhoneCheck(e164, False, False, "not a phone number")
    # number_type() is UNKNOWN exactly when is_valid_number() is False: one pass, not two
    # (this runs for every recipient of a campaign).
    kind = phonenumbers.number_type(number)
    if kind == PhoneNumberType.UNKNOWN:
        return PhoneCheck(e164, False, False, "not a valid phone number")
    capable = kind in SMS_CAPABLE
    return PhoneCheck(e164, True, capable, "mobile" if capable else _TYPE_NAMES.get(kind, "not a mobile number"))


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
