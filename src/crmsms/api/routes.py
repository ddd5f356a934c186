"""The REST API, /api/v1/. Every operation needs a bearer token; validation goes through the
same forms as the web UI, so both refuse the same input with the same words."""

from django.contrib.auth.views import redirect_to_login
from django.db import IntegrityError
from django.db.models import Count
from django.forms.models import model_to_dict
from django.http import HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404
from ninja import Field, NinjaAPI, Query, Schema, Status

from crmsms.crm.forms import AccountForm, ContactForm
from crmsms.crm.models import Account, Contact
from crmsms.crm.views import ACCOUNTS, CONTACTS
from crmsms.sms import (
    campaigns,
    compose,
    generation,
    placeholders,
    rendering,
    segments,
    sending_hours,
    states,
    variables,
)
from crmsms.sms.campaign_views import CampaignForm
from crmsms.sms.forms import MessageForm
from crmsms.sms.models import SmsCampaign, SmsMessage, SmsTemplate
from crmsms.sms.template_views import TemplateForm
from crmsms.web.listing import search_filter

from . import errors
from .auth import TokenAuth
from .schemas import (
    AccountIn,
    AccountOut,
    AccountPage,
    AccountPatch,
    CampaignIn,
    CampaignOut,
    CampaignPage,
    CampaignPatch,
    ContactIn,
    ContactOut,
    ContactPage,
    ContactPatch,
    ErrorOut,
    ForecastOut,
    MessageIn,
    MessageOut,
    MessagePage,
    MessagePatch,
    PreviewIn,
    PreviewOut,
    RecipientsIn,
    RecipientsOut,
    TemplateIn,
    TemplateOut,
    TemplatePage,
    TemplatePatch,
    VariableOut,
)


def docs_login_required(view):
    """The OpenAPI document and its page need a session login or a token too."""

    def wrapped(request, *args, **kwargs):
        if not request.user.is_authenticated:
            token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
            if not token or TokenAuth().authenticate(request, token) is None:
                if request.path.endswith("/docs"):  # a person in a browser: the login page
                    return redirect_to_login(request.get_full_path())
                return JsonResponse({"detail": "Unauthorized"}, status=401)
        return view(request, *args, **kwargs)

    return wrapped


api = NinjaAPI(title="crmsms", version="1", auth=TokenAuth(), urls_namespace="api", docs_decorator=docs_login_required)
errors.install(api)
ERR = {401: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut}


MAX_ID = 2**62  # larger ids cannot exist; refusing them keeps them out of the database driver


class Paging(Schema):
    q: str = ""
    limit: int = Field(50, ge=1, le=500)
    offset: int = Field(0, ge=0, le=10**9)


def _page(qs, paging: Paging) -> dict:
    return {"count": qs.count(), "limit": paging.limit, "offset": paging.offset,
            "items": list(qs[paging.offset:paging.offset + paging.limit])}


def _changes(payload: Schema, nullable: tuple[str, ...] = ()) -> dict:
    """The fields a PATCH sets. `null` is refused where it has no meaning: it would
    otherwise clear an opt-in or a name without anyone asking for it."""
    changes = payload.dict(exclude_unset=True)
    for name, value in changes.items():
        if value is None and name not in nullable:
            raise errors.field_error(name, "null", f"{name}: null is not a value here; leave the field out to keep it.")
    return changes


def _save(form_class, data: dict, instance=None, rename=None):
    form = form_class(data=data, instance=instance)
    if not form.is_valid():
        raise errors.form_error(form, rename)
    return form.save()


# --- accounts ---------------------------------------------------------------------------

@api.get("/accounts", response=AccountPage, tags=["accounts"])
def list_accounts(request, paging: Query[Paging]):
    qs = Account.objects.all()
    if paging.q:
        qs = qs.filter(search_filter(paging.q, ACCOUNTS.search, ACCOUNTS.phone_fields))
    return _page(qs.order_by("name", "id"), paging)


@api.post("/accounts", response={201: AccountOut, **ERR}, tags=["accounts"])
def create_account(request, payload: AccountIn):
    return Status(201, _save(AccountForm, payload.dict()))


@api.get("/accounts/{account_id}", response={200: AccountOut, **ERR}, tags=["accounts"])
def get_account(request, account_id: int):
    return get_object_or_404(Account, pk=account_id)


@api.patch("/accounts/{account_id}", response={200: AccountOut, **ERR}, tags=["accounts"])
def update_account(request, account_id: int, payload: AccountPatch):
    account = get_object_or_404(Account, pk=account_id)
    data = {**model_to_dict(account), **_changes(payload)}
    return _save(AccountForm, data, instance=account)


@api.delete("/accounts/{account_id}", response={204: None, **ERR}, tags=["accounts"])
def delete_account(request, account_id: int):
    get_object_or_404(Account, pk=account_id).delete()
    return Status(204, None)


# --- contacts ---------------------------------------------------------------------------

CONTACT_FIELDS = {"account": "account_id"}


def _contact_data(values: dict) -> dict:
    values = dict(values)
    if "account_id" in values:
        values["account"] = values.pop("account_id")
    return values


@api.get("/contacts", response=ContactPage, tags=["contacts"])
def list_contacts(request, paging: Query[Paging]):
    qs = Contact.objects.all()
    if paging.q:
        qs = qs.filter(search_filter(paging.q, CONTACTS.search, CONTACTS.phone_fields))
    return _page(qs.order_by("last_name", "first_name", "id"), paging)


@api.post("/contacts", response={201: ContactOut, **ERR}, tags=["contacts"])
def create_contact(request, payload: ContactIn):
    return Status(201, _save(ContactForm, _contact_data(payload.dict()), rename=CONTACT_FIELDS))


@api.get("/contacts/{contact_id}", response={200: ContactOut, **ERR}, tags=["contacts"])
def get_contact(request, contact_id: int):
    return get_object_or_404(Contact, pk=contact_id)


@api.patch("/contacts/{contact_id}", response={200: ContactOut, **ERR}, tags=["contacts"])
def update_contact(request, contact_id: int, payload: ContactPatch):
    contact = get_object_or_404(Contact, pk=contact_id)
    data = {**model_to_dict(contact), **_contact_data(_changes(payload, nullable=("account_id",)))}
    return _save(ContactForm, data, instance=contact, rename=CONTACT_FIELDS)


@api.delete("/contacts/{contact_id}", response={204: None, **ERR}, tags=["contacts"])
def delete_contact(request, contact_id: int):
    get_object_or_404(Contact, pk=contact_id).delete()
    return Status(204, None)


# --- variables and templates ------------------------------------------------------------

@api.get("/variables", response={200: list[VariableOut], **ERR}, tags=["templates"])
def list_variables(request, module: variables.Module):
    """The variables a text of this module may use, as the editor's field list shows them."""
    return [{"name": v.name, "label": v.label, "placeholder": v.placeholder} for v in variables.REGISTRY[module]]


class TemplateFilter(Paging):
    module: variables.Module | None = None


@api.get("/templates", response=TemplatePage, tags=["templates"])
def list_templates(request, paging: Query[TemplateFilter]):
    qs = SmsTemplate.objects.all()
    if paging.module:
        qs = qs.filter(module=paging.module)
    if paging.q:
        qs = qs.filter(search_filter(paging.q, ["name", "body"]))
    return _page(qs.order_by("name", "id"), paging)


@api.post("/templates", response={201: TemplateOut, **ERR}, tags=["templates"])
def create_template(request, payload: TemplateIn):
    template = _save(TemplateForm, payload.dict(), instance=SmsTemplate(created_by=request.user))
    return Status(201, template)


@api.get("/templates/{template_id}", response={200: TemplateOut, **ERR}, tags=["templates"])
def get_template(request, template_id: int):
    return get_object_or_404(SmsTemplate, pk=template_id)


@api.patch("/templates/{template_id}", response={200: TemplateOut, **ERR}, tags=["templates"])
def update_template(request, template_id: int, payload: TemplatePatch):
    template = get_object_or_404(SmsTemplate, pk=template_id)
    return _save(TemplateForm, {**model_to_dict(template), **_changes(payload)}, instance=template)


@api.delete("/templates/{template_id}", response={204: None, **ERR}, tags=["templates"])
def delete_template(request, template_id: int):
    get_object_or_404(SmsTemplate, pk=template_id).delete()
    return Status(204, None)


@api.post("/templates/{template_id}/preview", response={200: PreviewOut, **ERR}, tags=["templates"])
def preview_template(request, template_id: int, payload: PreviewIn):
    """The template's text exactly as it would leave for this contact or account."""
    template = get_object_or_404(SmsTemplate, pk=template_id)
    record = _recipient(payload.contact_id, payload.account_id)
    if record.module != template.module:
        raise errors.field_error(f"{template.module[:-1]}_id", "module",
                                 f"This template is based on {variables.MODULES[template.module]}: "
                                 f"give a {template.module[:-1]}_id.")
    try:
        result = rendering.preview(record, template.body, request.user, when=payload.send_at)
    except placeholders.PlaceholderError as error:
        raise errors.ApiError(422, [{"field": "body", "rule": p.code, "message": p.message} for p in error.problems],
                              detail="The template no longer compiles; edit it.") from None
    return {"text": result.text, "encoding": result.encoding, "segments": result.segments,
            "characters": len(result.text), "empty": result.empty}


# --- campaigns --------------------------------------------------------------------------

def _campaign_out(campaign: SmsCampaign, stats: dict | None = None) -> dict:
    return {
        "id": campaign.pk, "name": campaign.name, "send_at": campaign.send_at, "module": campaign.module,
        "template_id": campaign.template_id, "status": campaign.status, "created_at": campaign.created_at,
        **_hours_of(campaign),
        # A list annotates the count (one query for the page); one campaign counts it.
        "recipients": campaign.n_recipients if hasattr(campaign, "n_recipients") else campaign.recipients.count(),
        "generated": campaign.generated, "skipped": campaign.skipped,
        "stats": stats if stats is not None else campaigns.stats(campaign),
    }


def _hours_of(campaign: SmsCampaign) -> dict:
    return {"respect_hours": campaign.respect_hours, "hours_start": f"{campaign.hours_start:%H:%M}",
            "hours_end": f"{campaign.hours_end:%H:%M}",
            "hours_days": [sending_hours.DAY_NAMES[int(d)] for d in campaign.hours_days]}


def _campaign_form(data: dict, instance: SmsCampaign) -> SmsCampaign:
    # Sending hours left out keep what the campaign has (a new one: the server's defaults).
    data = {**_hours_of(instance), **{k: v for k, v in data.items() if v is not None or k == "template_id"}}
    if "template_id" in data:
        data["template"] = data.pop("template_id")
    return _save(CampaignForm, data, instance=instance, rename={"template": "template_id"})


def _draft_campaign(campaign_id: int) -> SmsCampaign:
    campaign = get_object_or_404(SmsCampaign, pk=campaign_id)
    if not campaign.is_editable:
        raise errors.ApiError(409, [{"field": "status", "rule": "not_draft",
                                     "message": f"This campaign is {campaign.get_status_display()}: "
                                                "only a Draft can change."}], detail="Conflict.")
    return campaign


@api.get("/campaigns", response=CampaignPage, tags=["campaigns"])
def list_campaigns(request, paging: Query[Paging]):
    qs = SmsCampaign.objects.annotate(n_recipients=Count("recipients")).order_by("-send_at", "-id")
    if paging.q:
        qs = qs.filter(search_filter(paging.q, ["name"]))
    page = _page(qs, paging)
    page["items"] = [_campaign_out(c, stats={}) for c in page["items"]]  # stats: read one campaign
    return page


@api.post("/campaigns", response={201: CampaignOut, **ERR}, tags=["campaigns"])
def create_campaign(request, payload: CampaignIn):
    campaign = _campaign_form(payload.dict(), SmsCampaign(created_by=request.user))
    return Status(201, _campaign_out(campaign))


@api.get("/campaigns/{campaign_id}", response={200: CampaignOut, **ERR}, tags=["campaigns"])
def get_campaign(request, campaign_id: int):
    return _campaign_out(get_object_or_404(SmsCampaign, pk=campaign_id))


@api.patch("/campaigns/{campaign_id}", response={200: CampaignOut, **ERR}, tags=["campaigns"])
def update_campaign(request, campaign_id: int, payload: CampaignPatch):
    campaign = _draft_campaign(campaign_id)
    current = {"name": campaign.name, "send_at": campaign.send_at, "module": campaign.module,
               "template_id": campaign.template_id}
    return _campaign_out(_campaign_form({**current, **_changes(payload, nullable=("template_id",))}, campaign))


@api.delete("/campaigns/{campaign_id}", response={204: None, **ERR}, tags=["campaigns"])
def delete_campaign(request, campaign_id: int):
    _draft_campaign(campaign_id).delete()
    return Status(204, None)


def _recipient_ids(campaign: SmsCampaign, payload: RecipientsIn) -> list[int]:
    wanted = "contact_ids" if campaign.module == variables.CONTACTS else "account_ids"
    other = "account_ids" if wanted == "contact_ids" else "contact_ids"
    if getattr(payload, other):
        raise errors.field_error(other, "module", f"{other}: this campaign is for {variables.MODULES[campaign.module]}; "
                                                  f"send {wanted}.")
    return getattr(payload, wanted)


@api.post("/campaigns/{campaign_id}/recipients", response={200: RecipientsOut, **ERR}, tags=["campaigns"])
def add_campaign_recipients(request, campaign_id: int, payload: RecipientsIn):
    campaign = _draft_campaign(campaign_id)
    ids = _recipient_ids(campaign, payload)
    found = campaigns.existing_ids(campaigns.model_of(campaign.module), ids)
    added = campaigns.add_recipients(campaign, found)
    return {"changed": added, "recipients": campaign.recipients.count(), "not_found": sorted(set(ids) - found)}


@api.delete("/campaigns/{campaign_id}/recipients", response={200: RecipientsOut, **ERR}, tags=["campaigns"])
def remove_campaign_recipients(request, campaign_id: int, payload: RecipientsIn):
    campaign = _draft_campaign(campaign_id)
    removed = campaigns.remove_recipients(campaign, _recipient_ids(campaign, payload))
    return {"changed": removed, "recipients": campaign.recipients.count(), "not_found": []}


@api.get("/campaigns/{campaign_id}/forecast", response={200: ForecastOut, **ERR}, tags=["campaigns"])
def campaign_forecast(request, campaign_id: int):
    """What « Generate all SMS Messages » would do now: messages, skipped by reason, parts."""
    result = generation.forecast(get_object_or_404(SmsCampaign, pk=campaign_id))
    return {"messages": result.messages, "skipped": dict(result.skipped), "segments": result.segments}


def _campaign_action(campaign_id: int, action) -> dict:
    campaign = get_object_or_404(SmsCampaign.objects.select_related("template"), pk=campaign_id)
    try:
        action(campaign)
    except campaigns.CampaignError as error:
        raise errors.ApiError(409, [{"field": "status", "rule": "refused", "message": str(error)}],
                              detail="Conflict.") from None
    return _campaign_out(campaign)


@api.post("/campaigns/{campaign_id}/generate", response={200: CampaignOut, **ERR}, tags=["campaigns"])
def generate_campaign(request, campaign_id: int):
    """« Generate all SMS Messages »: the worker does it; poll the campaign for its status."""
    return _campaign_action(campaign_id, campaigns.start_generation)


@api.post("/campaigns/{campaign_id}/pause", response={200: CampaignOut, **ERR}, tags=["campaigns"])
def pause_campaign(request, campaign_id: int):
    return _campaign_action(campaign_id, campaigns.pause)


@api.post("/campaigns/{campaign_id}/resume", response={200: CampaignOut, **ERR}, tags=["campaigns"])
def resume_campaign(request, campaign_id: int):
    return _campaign_action(campaign_id, campaigns.resume)


@api.post("/campaigns/{campaign_id}/cancel", response={200: CampaignOut, **ERR}, tags=["campaigns"])
def cancel_campaign(request, campaign_id: int):
    return _campaign_action(campaign_id, lambda campaign: campaigns.cancel(campaign, request.user))


@api.post("/campaigns/{campaign_id}/retry-failed", response={200: CampaignOut, **ERR}, tags=["campaigns"])
def retry_failed_campaign(request, campaign_id: int):
    """Queue again the failed messages whose failure is retryable (the provider proved it
    did not take them); `stats` then counts them as to_send."""
    return _campaign_action(campaign_id, lambda campaign: campaigns.retry_failed(campaign, request.user))


# --- messages ---------------------------------------------------------------------------

class MessageFilter(Schema):
    status: str = ""
    contact_id: int | None = Field(None, ge=1, le=MAX_ID)
    account_id: int | None = Field(None, ge=1, le=MAX_ID)
    limit: int = Field(50, ge=1, le=500)
    offset: int = Field(0, ge=0, le=10**9)


def _recipient(contact_id: int | None, account_id: int | None):
    if (contact_id is None) == (account_id is None):
        raise errors.field_error("contact_id", "one_recipient", "Give exactly one of contact_id or account_id.")
    if contact_id is not None:
        record = Contact.objects.filter(pk=contact_id).first()
        if record is None:
            raise errors.field_error("contact_id", "not_found", f"contact_id: no contact {contact_id}.")
        return record
    record = Account.objects.filter(pk=account_id).first()
    if record is None:
        raise errors.field_error("account_id", "not_found", f"account_id: no account {account_id}.")
    return record


def _message_form(record, user, body, send_at, status, version=None, template=None) -> dict:
    form = MessageForm(data={"body": body, "send_at": send_at, "status": status, "version": version,
                             "template": template}, record=record, user=user)
    if not form.is_valid():
        raise errors.form_error(form, rename={"template": "template_id"})
    return form.cleaned_data


@api.get("/messages", response={200: MessagePage, **ERR}, tags=["messages"])
def list_messages(request, filters: Query[MessageFilter]):
    qs = SmsMessage.objects.order_by("-id")
    if filters.status:
        if filters.status not in states.LABELS:
            raise errors.field_error("status", "choice", f"status: one of {', '.join(states.LABELS)}.")
        qs = qs.filter(status=filters.status)
    if filters.contact_id is not None:
        qs = qs.filter(contact_id=filters.contact_id)
    if filters.account_id is not None:
        qs = qs.filter(account_id=filters.account_id)
    return _page(qs, Paging(limit=filters.limit, offset=filters.offset))


@api.post("/messages", response={200: MessageOut, 201: MessageOut, **ERR}, tags=["messages"])
def create_message(request: HttpRequest, payload: MessageIn):
    """Create a message for a contact or an account. Send an `Idempotency-Key` header to make
    retries safe: the same key returns the message the first request created."""
    key = request.headers.get("Idempotency-Key") or None
    if key and len(key) > 100:
        raise errors.field_error("Idempotency-Key", "max_length", "Idempotency-Key: at most 100 characters.")
    # A retry is told apart from a first request only when it fails (the unique key, or a
    # record deleted since the first one): a first request, the common case, pays no lookup.
    try:
        return Status(201, _new_message(request, payload, key))
    except (errors.ApiError, IntegrityError) as refused:
        first = SmsMessage.objects.filter(created_by=request.user, idempotency_key=key).first() if key else None
        if first is not None:
            return Status(200, _same_request(first, payload))
        if isinstance(refused, errors.ApiError):
            raise
    # Not the key: the contact or account was deleted while we wrote.
    field = "contact_id" if payload.contact_id is not None else "account_id"
    raise errors.field_error(field, "not_found", f"{field}: the record was deleted meanwhile.")


def _new_message(request: HttpRequest, payload: MessageIn, key: str | None) -> SmsMessage:
    record = _recipient(payload.contact_id, payload.account_id)
    body = payload.body
    if payload.template_id is not None:
        template = _template_for(payload.template_id, record)
        body = template.body if body is None else body
    data = _message_form(record, request.user, body, payload.send_at, payload.status, template=payload.template_id)
    return compose.create_message(record, body=data["body"], send_at=data["send_at"], status=data["status"],
                                  user=request.user, template=data["template"], idempotency_key=key)


def _template_for(template_id: int, record) -> SmsTemplate:
    template = SmsTemplate.objects.filter(pk=template_id).first()
    if template is None:
        raise errors.field_error("template_id", "not_found", f"template_id: no template {template_id}.")
    if template.module != record.module:
        raise errors.field_error("template_id", "module",
                                 f"template_id: template {template_id} is based on {variables.MODULES[template.module]}; "
                                 f"this message goes to one of the {variables.MODULES[record.module]}.")
    return template


def _same_request(existing: SmsMessage, payload: MessageIn) -> SmsMessage:
    """A key names one request: reusing it for another message is a client bug, refused."""
    same_status = existing.status == payload.status or (payload.status == states.TO_SEND and existing.status
                                                         not in (states.DRAFT, states.CANCELLED))
    if (existing.contact_id, existing.account_id) != (payload.contact_id, payload.account_id) \
            or (payload.body is not None and existing.body != segments.normalise(payload.body)) \
            or existing.template_id != payload.template_id or not same_status:
        raise errors.ApiError(409, [{"field": "Idempotency-Key", "rule": "reused",
                                     "message": f"Idempotency-Key: already used for message {existing.pk}, "
                                                "with another recipient or text. Use a new key for a new message."}],
                              detail="Conflict.")
    return existing


@api.get("/messages/{message_id}", response={200: MessageOut, **ERR}, tags=["messages"])
def get_message(request, message_id: int):
    return get_object_or_404(SmsMessage, pk=message_id)


@api.patch("/messages/{message_id}", response={200: MessageOut, **ERR}, tags=["messages"])
def update_message(request, message_id: int, payload: MessagePatch):
    message = get_object_or_404(SmsMessage.objects.select_related("contact", "account"), pk=message_id)
    if not message.is_editable:
        raise errors.ApiError(409, [{"field": "status", "rule": "not_draft",
                                     "message": f"This SMS is {message.status_label}: only drafts can be edited."}],
                              detail="Conflict.")
    changes = payload.dict(exclude_unset=True)
    template, body = message.template, changes.get("body")
    if "template_id" in changes:  # only a template named now is checked against the record
        template = _template_for(changes["template_id"], message.record) if changes["template_id"] else None
        body = template.body if body is None and template else body
    data = _message_form(message.record, request.user, message.body if body is None else body,
                         changes.get("send_at", message.send_at), changes.get("status", message.status),
                         changes.get("version", message.version))
    try:
        return compose.update_draft(message, version=data["version"], body=data["body"], send_at=data["send_at"],
                                    status=data["status"], user=request.user, template=template)
    except compose.EditConflict as conflict:
        raise errors.ApiError(409, [{"field": "version", "rule": "conflict", "message": str(conflict)}],
                              detail="Conflict.") from None


@api.post("/messages/{message_id}/cancel", response={200: MessageOut, **ERR}, tags=["messages"])
def cancel_message(request, message_id: int):
    message = get_object_or_404(SmsMessage, pk=message_id)
    try:
        compose.cancel(message, request.user)
    except states.TransitionRefused as refused:
        raise errors.ApiError(409, [{"field": "status", "rule": "not_cancellable", "message": str(refused)}],
                              detail="Conflict.") from None
    return message
