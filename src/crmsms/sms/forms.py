"""Validation of an SMS message, shared by the web UI and the REST API."""

from datetime import timedelta

from django import forms
from django.utils import timezone

from . import eligibility, segments, states

MAX_CHARACTERS = 1600  # the longest text the major providers accept (Twilio: 1,600)
MAX_DAYS_AHEAD = 366

STATUS_CHOICES = [(states.DRAFT, "Draft"), (states.TO_SEND, "Send SMS")]


class MessageForm(forms.Form):
    body = forms.CharField(label="Message", widget=forms.Textarea(attrs={"rows": 5}), strip=False)
    send_at = forms.DateTimeField(
        label="Sending date", required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text="In your time zone. Empty or in the past: sent at once.",
    )
    status = forms.ChoiceField(choices=STATUS_CHOICES, initial=states.DRAFT)
    version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, record=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.record = record

    def clean_body(self):
        body = segments.normalise(self.cleaned_data["body"])
        if not body.strip():
            raise forms.ValidationError("Message: the text is empty.", code="blank")
        if len(body) > MAX_CHARACTERS:
            raise forms.ValidationError(
                f"Message: at most {MAX_CHARACTERS} characters ({len(body)} given).", code="too_long"
            )
        return body

    def clean_send_at(self):
        send_at = self.cleaned_data.get("send_at") or timezone.now()
        if send_at > timezone.now() + timedelta(days=MAX_DAYS_AHEAD):
            raise forms.ValidationError(
                f"Sending date: at most {MAX_DAYS_AHEAD} days ahead.", code="too_far"
            )
        return send_at

    def clean(self):
        data = super().clean()
        if data.get("status") == states.TO_SEND:
            refusal = eligibility.check(self.record)
            if refusal:
                self.add_error("status", forms.ValidationError(f"Cannot send: {refusal.message}", code=refusal.code))
        return data
