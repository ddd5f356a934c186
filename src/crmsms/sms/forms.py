"""Validation of an SMS message, shared by the web UI and the REST API."""

from datetime import timedelta

from django import forms
from django.utils import timezone

from . import eligibility, placeholders, rendering, segments, states
from .models import SmsTemplate

MAX_CHARACTERS = 1600  # the longest text the major providers accept (Twilio: 1,600)
# What may be typed, placeholders' syntax included: the limit above applies to the text as
# it leaves (rendered), this one only stops absurd input.
MAX_TYPED = 5000
MAX_DAYS_AHEAD = 366

STATUS_CHOICES = [(states.DRAFT, "Draft"), (states.TO_SEND, "Send SMS")]


class SendAtField(forms.DateTimeField):
    """A date typed without a zone is read in the user's zone (the active one). A date in
    the past means now (and is recorded as now); more than MAX_DAYS_AHEAD ahead is refused."""

    def __init__(self, *args, label="Sending date", **kwargs):
        super().__init__(*args, label=label, **kwargs)

    def to_python(self, value):
        try:
            return super().to_python(value)
        except (OverflowError, ValueError):
            # Year 1 in Paris is before year 1 in UTC: Python cannot represent it.
            raise forms.ValidationError(f"{self.label}: enter a real date, such as today.", code="invalid") from None
        except forms.ValidationError as error:
            if error.code == "ambiguous_timezone":
                raise forms.ValidationError(
                    f"{self.label}: this time happens twice, or not at all, in "
                    f"{timezone.get_current_timezone_name()} when the clocks change; choose another.",
                    code="ambiguous_time") from None
            raise

    def clean(self, value):
        when = super().clean(value)
        now = timezone.now()
        if when is None or when < now:
            return now  # "in the past: send now", and listed as sent now, not years ago
        if when > now + timedelta(days=MAX_DAYS_AHEAD):
            raise forms.ValidationError(f"{self.label}: at most {MAX_DAYS_AHEAD} days ahead.", code="too_far")
        return when


class GuardsStaleEdits(forms.ModelForm):
    """For a record with `updated_at`: the form carries when its editor was opened, and
    saving over a change made since (another tab, someone else) is refused instead of
    silently undoing it."""

    loaded_at = forms.CharField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["loaded_at"].initial = self.instance.updated_at.isoformat()

    def clean(self):
        data = super().clean()
        loaded_at = data.get("loaded_at")
        if self.instance.pk and loaded_at and loaded_at != self.instance.updated_at.isoformat():
            raise forms.ValidationError(
                f"This {self._meta.model._meta.verbose_name.removeprefix('sms ')} was changed since you opened it "
                "(in another tab or by someone else). Open it again to see it as it is now, then make your change.",
                code="conflict")
        return data


def placeholder_errors(problems: list[placeholders.Problem]) -> forms.ValidationError:
    return forms.ValidationError([forms.ValidationError(f"Message: {p.message}", code=p.code) for p in problems])


def clean_text(body: str) -> str:
    """The checks every typed SMS text goes through (messages and templates)."""
    body = segments.normalise(body)
    if not body.strip():
        raise forms.ValidationError("Message: the text is empty.", code="blank")
    if len(body) > MAX_TYPED:
        raise forms.ValidationError(
            f"Message: at most {MAX_CHARACTERS} characters ({len(body)} given).", code="too_long"
        )
    return body


def check_literal_length(body: str, module: str) -> None:
    """A text's own characters (its variables left out) must fit; the variables are
    checked per recipient when a message is made."""
    literal = placeholders.compile(body, module).literal
    if len(literal) > MAX_CHARACTERS:
        raise forms.ValidationError(
            f"Message: at most {MAX_CHARACTERS} characters ({len(literal)} given, variables not counted).",
            code="too_long")


class MessageForm(forms.Form):
    template = forms.ModelChoiceField(
        queryset=SmsTemplate.objects.none(), required=False, empty_label="(none)",
        help_text="Its text fills the message, which you can still change.",
        error_messages={"invalid_choice": "Template: this template no longer exists; pick another or none."},
    )
    body = forms.CharField(
        label="Message", widget=forms.Textarea(attrs={"rows": 5}), strip=False,
        error_messages={"required": "Message: the text is empty."},
    )
    send_at = SendAtField(
        label="Sending date", required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        error_messages={"invalid": "Sending date: enter a date and a time."},
    )
    status = forms.ChoiceField(choices=STATUS_CHOICES, initial=states.DRAFT, widget=forms.RadioSelect)
    version = forms.IntegerField(widget=forms.HiddenInput, required=False)
    # One per form shown: a double click, or a resubmitted page, finds the message the
    # first submission created instead of creating (and sending) a second one.
    submission = forms.CharField(widget=forms.HiddenInput, required=False, max_length=100)

    def __init__(self, *args, record=None, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.record, self.user = record, user
        if record is not None:
            self.fields["template"].queryset = SmsTemplate.objects.filter(module=record.module)
        zone = timezone.get_current_timezone_name()
        self.fields["send_at"].help_text = f"In your time zone ({zone}). Empty or in the past: sent at once."

    def clean_body(self):
        body = clean_text(self.cleaned_data["body"])
        problems = placeholders.problems(body, self.record.module)
        if problems:
            raise placeholder_errors(problems)
        return body

    def clean(self):
        data = super().clean()
        if data.get("body") and data.get("send_at"):
            result = rendering.preview(self.record, data["body"], self.user, data["send_at"])
            if len(result.text) > MAX_CHARACTERS:
                count = len(result.text)
                detail = f"({count} given)" if result.text == data["body"] else \
                    f"once the variables are filled in ({count} for {self.record})"
                self.add_error("body", forms.ValidationError(
                    f"Message: at most {MAX_CHARACTERS} characters {detail}.", code="too_long"))
            elif not result.text.strip():
                self.add_error("body", forms.ValidationError(
                    f"Message: the text is empty for {self.record} once the variables are filled in "
                    f"({', '.join(result.empty)} {'is' if len(result.empty) == 1 else 'are'} empty).", code="blank"))
        if data.get("status") == states.TO_SEND:
            refusal = eligibility.check(self.record)
            if refusal:
                self.add_error("status", forms.ValidationError(f"Cannot send: {refusal.message}", code=refusal.code))
        return data
