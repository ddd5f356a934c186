import pytest

from crmsms.crm.models import Account, Contact
from crmsms.sms import eligibility

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("number, opt_in, code", [
    ("+33612345678", True, None),
    ("", True, "no_number"),
    ("+33612", True, "invalid_number"),         # stored before validation existed, or imported
    ("+33142685300", True, "not_mobile"),       # a landline
    ("+33612345678", False, "no_opt_in"),
])
def test_contact_eligibility(number, opt_in, code):
    contact = Contact.objects.create(first_name="Camille", last_name="Bernard", phone_mobile=number, sms_opt_in=opt_in)
    refusal = eligibility.check(contact)
    assert (refusal.code if refusal else None) == code
    if refusal:
        assert "Camille Bernard" in refusal.message


def test_account_uses_the_phone_field():
    account = Account.objects.create(name="Garage Dupont", phone_office="+33142685300", sms_opt_in=True)
    refusal = eligibility.check(account)
    assert refusal.code == "not_mobile"
    assert "The Phone of Garage Dupont (+33142685300) is a landline" in refusal.message
    account.phone_office = "+33611223344"
    assert eligibility.check(account) is None


def test_deleted_record():
    assert eligibility.check(None).code == "record_deleted"
