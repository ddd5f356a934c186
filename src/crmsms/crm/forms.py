"""Validation of contacts and accounts, shared by the web UI and the REST API."""

from django import forms

from . import phones
from .models import Account, Contact

# Room for what people paste ("+33 (0) 6 12 34 56 78"); what is stored is E.164.
PHONE_INPUT_LENGTH = 40


class AccountForm(forms.ModelForm):
    website = forms.URLField(required=False, assume_scheme="https")
    phone_office = forms.CharField(label="Phone", required=False, max_length=PHONE_INPUT_LENGTH)

    class Meta:
        model = Account
        fields = [
            "name", "phone_office", "sms_opt_in", "billing_street", "billing_postal_code",
            "billing_city", "billing_country", "website",
        ]

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("Name: enter the account's name.", code="required")
        return name

    def clean_phone_office(self):
        # An office phone may be a landline (it is still the account's phone); whether it
        # can receive an SMS is decided when one is sent, and said then.
        return phones.normalise(self.cleaned_data["phone_office"], field_label="Phone")


class ContactForm(forms.ModelForm):
    phone_mobile = forms.CharField(label="Mobile", required=False, max_length=PHONE_INPUT_LENGTH)

    class Meta:
        model = Contact
        fields = ["first_name", "last_name", "title", "email", "phone_mobile", "sms_opt_in", "account"]

    def clean_last_name(self):
        name = self.cleaned_data["last_name"].strip()
        if not name:
            raise forms.ValidationError("Last name: enter the contact's last name.", code="required")
        return name

    def clean_phone_mobile(self):
        e164 = phones.normalise(self.cleaned_data["phone_mobile"], field_label="Mobile")
        phones.require_mobile(e164, field_label="Mobile")
        return e164
