"""Validation of contacts and accounts, shared by the web UI and the REST API."""

from django import forms

from . import phones
from .models import Account, Contact, OptOut

# Room for what people paste ("+33 (0) 6 12 34 56 78"); what is stored is E.164.
PHONE_INPUT_LENGTH = 40


class GuardsOptOuts(forms.ModelForm):
    """« SMS opt in » cannot be ticked again for a number that asked for no more SMS (it
    replied STOP) unless the person's new consent is recorded: then the reason goes to the
    consent ledger and the number's opt-out is lifted."""

    consent_reason = forms.CharField(
        label="Reason for the new opt-in", required=False, max_length=500,
        help_text="Only when ticking « SMS opt in » for a number that replied STOP: how the person "
                  "asked for SMS again (e.g. « asked in the shop on 2026-11-26 »).")

    def clean(self):
        data = super().clean()
        number = data.get(self._meta.model.phone_field)
        ticked_now = data.get("sms_opt_in") and not (self.instance.pk and self.instance.sms_opt_in
                                                      and self.instance.sms_number == number)
        self.opt_out = OptOut.objects.filter(number=number).first() if number and ticked_now else None
        if self.opt_out and not data.get("consent_reason", "").strip():
            label = self.fields["sms_opt_in"].label
            self.add_error("sms_opt_in", forms.ValidationError(
                f"{label}: {phones.display(number)} asked for no more SMS on {self.opt_out.since:%Y-%m-%d} "
                f"({self.opt_out.get_source_display().lower()}). Tick it again only with the person's new consent, "
                "and say how you got it in « Reason for the new opt-in ».", code="opted_out"))
        return data

    def save(self, commit=True):
        reason = self.cleaned_data.get("consent_reason", "").strip()
        if not (self.opt_out and reason):
            return super().save(commit)
        from . import consent

        source, actor, _ = consent.current()
        with consent.acting(source, actor, reason):
            record = super().save(commit)
            OptOut.objects.filter(pk=self.opt_out.pk).delete()
        return record


class AccountForm(GuardsOptOuts):
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


class ContactForm(GuardsOptOuts):
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
