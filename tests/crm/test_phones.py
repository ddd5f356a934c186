import pytest
from django.core.exceptions import ValidationError

from crmsms.crm import phones


@pytest.mark.parametrize("typed, e164", [
    ("0612345678", "+33612345678"),           # national format, read in the default region FR
    ("+33 6 12 34 56 78", "+33612345678"),
    ("06.12.34.56.78", "+33612345678"),
    ("+44 7911 123456", "+447911123456"),      # a "+" number ignores the default region
    ("  ", ""),
    ("", ""),
])
def test_normalise_to_e164(typed, e164):
    assert phones.normalise(typed, field_label="Mobile") == e164


@pytest.mark.parametrize("typed", ["+999", "abc", "+33 6 12", "0612345678901234"])
def test_invalid_numbers_are_refused_naming_the_field(typed):
    with pytest.raises(ValidationError) as error:
        phones.normalise(typed, field_label="Mobile")
    assert error.value.code == "invalid_phone"
    assert error.value.messages[0].startswith("Mobile: ")
    assert typed.strip() in error.value.messages[0]


def test_region_setting_decides_how_national_numbers_are_read(settings):
    settings.CRMSMS_DEFAULT_REGION = "GB"
    assert phones.normalise("07911 123456", field_label="Mobile") == "+447911123456"


def test_landline_is_not_a_mobile():
    landline = phones.normalise("01 42 68 53 00", field_label="Phone")
    assert landline == "+33142685300"
    info = phones.inspect(landline)
    assert info.valid and not info.sms_capable and info.kind == "a landline"
    with pytest.raises(ValidationError) as error:
        phones.require_mobile(landline, field_label="Mobile")
    assert error.value.code == "not_mobile"
    assert "landline" in error.value.messages[0]


def test_display_is_readable():
    assert phones.display("+33612345678") == "+33 6 12 34 56 78"
    assert phones.display("") == ""
