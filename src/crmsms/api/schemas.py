from datetime import datetime
from typing import Annotated, Literal

from ninja import Field, Schema

# Ticking « SMS opt in » again for a number that replied STOP needs the person's new
# consent, said here (it goes to the consent ledger).
ConsentReason = Field("", max_length=500, description="why the opt-in is ticked again for a number that replied STOP")


class AccountFields(Schema):
    name: str
    phone_office: str = ""
    sms_opt_in: bool = False
    billing_street: str = ""
    billing_postal_code: str = ""
    billing_city: str = ""
    billing_country: str = ""
    website: str = ""


class AccountIn(AccountFields):
    consent_reason: str = ConsentReason


class AccountPatch(Schema):
    name: str | None = None
    phone_office: str | None = None
    sms_opt_in: bool | None = None
    billing_street: str | None = None
    billing_postal_code: str | None = None
    billing_city: str | None = None
    billing_country: str | None = None
    website: str | None = None
    consent_reason: str | None = ConsentReason


class AccountOut(AccountFields):
    id: int
    created_at: datetime
    updated_at: datetime


class ContactFields(Schema):
    first_name: str = ""
    last_name: str
    title: str = ""
    email: str = ""
    phone_mobile: str = ""
    sms_opt_in: bool = False
    account_id: int | None = Field(None, ge=1, le=2**62)


class ContactIn(ContactFields):
    consent_reason: str = ConsentReason


class ContactPatch(Schema):
    first_name: str | None = None
    last_name: str | None = None
    title: str | None = None
    email: str | None = None
    phone_mobile: str | None = None
    sms_opt_in: bool | None = None
    account_id: int | None = None
    consent_reason: str | None = ConsentReason


class ContactOut(ContactFields):
    id: int
    created_at: datetime
    updated_at: datetime


Status = Literal["draft", "to_send"]


class MessageIn(Schema):
    contact_id: int | None = Field(None, ge=1, le=2**62)
    account_id: int | None = Field(None, ge=1, le=2**62)
    template_id: int | None = Field(None, ge=1, le=2**62)
    body: str | None = None  # may be left out when template_id gives it
    send_at: datetime | None = None
    status: Status = "draft"


class MessagePatch(Schema):
    template_id: int | None = Field(None, ge=1, le=2**62)
    body: str | None = None
    send_at: datetime | None = None
    status: Status | None = None
    version: int | None = None


class MessageOut(Schema):
    id: int
    contact_id: int | None
    account_id: int | None
    recipient_name: str
    to_number: str
    body: str
    text: str
    template_id: int | None
    encoding: str
    segments: int
    status: str
    send_at: datetime
    # When it may leave: the sending date, or later (a campaign's sending hours in the
    # recipient's time zone, the next attempt after a provider asked to retry later).
    due_at: datetime
    sent_at: datetime | None
    attempts: int
    provider: str
    provider_message_id: str | None
    error_code: str
    error_message: str
    retryable: bool  # failed, and « Retry failed » may queue it again
    campaign_id: int | None
    version: int
    created_at: datetime


class Page(Schema):
    count: int
    limit: int
    offset: int


class AccountPage(Page):
    items: list[AccountOut]


class ContactPage(Page):
    items: list[ContactOut]


class MessagePage(Page):
    items: list[MessageOut]


class VariableOut(Schema):
    name: str
    label: str
    placeholder: str


Module = Literal["contacts", "accounts"]


class TemplateIn(Schema):
    name: str
    module: Module
    body: str


class TemplatePatch(Schema):
    name: str | None = None
    module: Module | None = None
    body: str | None = None


class TemplateOut(TemplateIn):
    id: int
    created_at: datetime
    updated_at: datetime


class TemplatePage(Page):
    items: list[TemplateOut]


class PreviewIn(Schema):
    contact_id: int | None = Field(None, ge=1, le=2**62)
    account_id: int | None = Field(None, ge=1, le=2**62)
    send_at: datetime | None = None  # for {{ today }}; default now


class PreviewOut(Schema):
    text: str
    encoding: str
    segments: int
    characters: int
    empty: list[str]  # variables with no value (and no default) for this recipient


Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class SendingHoursFields(Schema):
    """A campaign's sending hours, in each recipient's time zone. Left out on create: the
    server's defaults (CRMSMS_SENDING_HOURS, CRMSMS_SENDING_DAYS)."""

    respect_hours: bool | None = None
    hours_start: str | None = Field(None, examples=["08:00"], max_length=8)
    hours_end: str | None = Field(None, examples=["20:00"], max_length=8)
    hours_days: list[Day] | None = Field(None, examples=[["mon", "tue", "wed", "thu", "fri", "sat"]], max_length=7)


class CampaignIn(SendingHoursFields):
    name: str
    send_at: datetime
    module: Module
    template_id: int | None = Field(None, ge=1, le=2**62)


class CampaignPatch(SendingHoursFields):
    name: str | None = None
    send_at: datetime | None = None
    module: Module | None = None
    template_id: int | None = Field(None, ge=1, le=2**62)


class CampaignOut(Schema):
    id: int
    name: str
    send_at: datetime
    module: str
    template_id: int | None
    respect_hours: bool
    hours_start: str
    hours_end: str
    hours_days: list[str]
    status: str
    recipients: int
    generated: int
    skipped: int
    stats: dict[str, int]  # messages per status
    created_at: datetime


class CampaignPage(Page):
    items: list[CampaignOut]


RecordId = Annotated[int, Field(ge=1, le=2**62)]


class RecipientsIn(Schema):
    contact_ids: list[RecordId] = Field(default_factory=list, max_length=100_000)
    account_ids: list[RecordId] = Field(default_factory=list, max_length=100_000)


class RecipientsOut(Schema):
    changed: int
    recipients: int
    not_found: list[int]


class ForecastOut(Schema):
    messages: int
    skipped: dict[str, int]
    segments: int


class ErrorItem(Schema):
    field: str | None
    rule: str
    message: str


class ErrorOut(Schema):
    detail: str
    errors: list[ErrorItem] = []
