"""SMS Messages module: the list, a message's page with its history, and the form that
creates a message from a contact's or an account's "SMS Messages" sub-panel."""

import uuid
from dataclasses import replace

from django.contrib import messages
from django.db import IntegrityError
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from crmsms.crm.views import MODULES
from crmsms.web.listing import Column, listing, parse_id

from . import campaigns, compose, eligibility, placeholders, rendering, states
from .forms import MessageForm
from .models import SmsCampaign, SmsMessage, SmsTemplate
from .template_views import editor_context

COLUMNS = [
    Column("recipient", "To", "recipient_name"), Column("status", "Status", "status"),
    Column("send_at", "Sending date", "send_at"), Column("text", "Text"),
    Column("segments", "Parts", "segments"),
]


def message_list(request):
    qs = SmsMessage.objects.select_related("contact", "account")
    status = request.GET.get("status", "")
    if status in states.LABELS:
        qs = qs.filter(status=status)
    scope = None
    for name, model in (("template", SmsTemplate), ("campaign", SmsCampaign)):
        # "All SMS made from this template / of this campaign"
        pk = parse_id(request.GET.get(name))
        if pk is not None:
            qs = qs.filter(**{f"{name}_id": pk})
            found = model.objects.filter(pk=pk).first()
            scope = {"label": f"Only the SMS of {model._meta.verbose_name.removeprefix('sms ')} "
                              f"“{found or pk}”", "params": {name: pk}}
    count = None
    campaign_id = parse_id(request.GET.get("campaign"))
    if campaign_id is not None and parse_id(request.GET.get("template")) is None:
        # A campaign's messages: counted from its kept counts, not row by row.
        counts = campaigns.stats(SmsCampaign(pk=campaign_id))
        count = counts.get(status, 0) if status in states.LABELS else sum(counts.values())
    columns = COLUMNS
    if campaign_id is not None:
        # A campaign's messages share its sending date: in id order they are in the same
        # order, and that one is indexed (no sort of a million rows for a page of 25).
        columns = [replace(c, field="id") if c.key == "send_at" else c for c in COLUMNS]
    context = listing(request, qs, search=["body", "recipient_name"], phone_fields=["to_number"],
                      columns=columns, default_sort="-send_at", count=count)
    return render(request, "sms/message_list.html", {**context, "scope": scope, "choice_filter": {
        "name": "status", "label": "Status", "all": "Any status", "choices": states.CHOICES, "value": status}})


def message_detail(request, pk: int):
    message = get_object_or_404(
        SmsMessage.objects.select_related("contact", "account", "created_by", "template", "campaign"), pk=pk)
    if message.is_editable and message.record is not None:
        # A draft's text follows its record until it is queued: show it as it would leave
        # (a date already past means "now", as when it is sent).
        try:
            fresh = rendering.preview(message.record, message.body, request.user,
                                      when=max(message.send_at, timezone.now()))
        except placeholders.PlaceholderError:
            pass  # a variable left the registry since: the stored text stays; editing will say why
        else:
            message.text, message.encoding, message.segments = fresh.text, fresh.encoding, fresh.segments
    return render(request, "sms/message_detail.html", {
        "message": message, "events": message.events.all(),
    })


def _render_form(request, form, record, message=None):
    return render(request, "sms/message_form.html", {
        "form": form, "record": record, "message": message, "refusal": eligibility.check(record),
        "template_bodies": {str(t.pk): t.body for t in form.fields["template"].queryset},
        **editor_context(record.module),
    })


@require_http_methods(["GET", "POST"])
def message_create(request, module: str, pk: int):
    record = get_object_or_404(MODULES[module].model, pk=pk)
    initial = {"send_at": timezone.localtime().replace(second=0, microsecond=0), "status": states.DRAFT,
               "submission": uuid.uuid4().hex}
    form = MessageForm(request.POST or None, record=record, user=request.user, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        key = data["submission"] or None
        if key and SmsMessage.objects.filter(created_by=request.user, idempotency_key=key).exists():
            return redirect(record)  # the same form submitted twice: the first one counts
        try:
            message = compose.create_message(record, body=data["body"], send_at=data["send_at"],
                                             status=data["status"], user=request.user, template=data["template"],
                                             idempotency_key=key)
        except IntegrityError:  # the twin request won the race
            return redirect(record)
        if message.status == states.DRAFT:
            messages.success(request, "Draft saved.")
        elif message.send_at > timezone.now():
            messages.success(request, f"SMS to be sent on {timezone.localtime(message.send_at):%d/%m/%Y at %H:%M}.")
        else:
            messages.success(request, "SMS on its way.")
        return redirect(record)
    return _render_form(request, form, record)


@require_http_methods(["GET", "POST"])
def message_edit(request, pk: int):
    message = get_object_or_404(SmsMessage.objects.select_related("contact", "account"), pk=pk)
    if not message.is_editable:
        messages.error(request, f"This SMS is {message.status_label}: only drafts can be edited.")
        return redirect(message)
    record = message.record
    initial = {"body": message.body, "send_at": timezone.localtime(message.send_at),
               "status": message.status, "version": message.version, "template": message.template_id}
    form = MessageForm(request.POST or None, record=record, user=request.user, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            compose.update_draft(message, version=data["version"], body=data["body"], send_at=data["send_at"],
                                 status=data["status"], user=request.user, template=data["template"])
        except compose.EditConflict as conflict:
            form.add_error(None, str(conflict))
            # What is there now, so the user can compare it with what they typed.
            message.refresh_from_db()
        else:
            messages.success(request, "SMS saved.")
            return redirect(message)
    return _render_form(request, form, record, message)


@require_POST
def message_send(request, pk: int):
    """"Send now" on a draft: the same checks as saving it with « Send SMS »."""
    message = get_object_or_404(SmsMessage.objects.select_related("contact", "account"), pk=pk)
    form = MessageForm({"body": message.body, "status": states.TO_SEND, "version": request.POST.get("version")},
                       record=message.record, user=request.user)
    if not message.is_editable:
        messages.error(request, f"This SMS is {message.status_label}: only drafts can be sent from here.")
    elif not form.is_valid():
        messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
    else:
        try:
            compose.update_draft(message, version=form.cleaned_data["version"], body=form.cleaned_data["body"],
                                 send_at=form.cleaned_data["send_at"], status=states.TO_SEND, user=request.user,
                                 template=message.template)
        except compose.EditConflict as conflict:
            messages.error(request, str(conflict))
        else:
            messages.success(request, "SMS queued: it leaves now.")
    return redirect(message)


@require_POST
def message_resolve(request, pk: int):
    message = get_object_or_404(SmsMessage, pk=pk)
    outcome = request.POST.get("outcome")
    if outcome not in (states.SENT, states.FAILED):
        messages.error(request, "Say whether the provider sent it or not.")
        return redirect(message)
    try:
        compose.resolve_unknown(message, outcome, request.user)
    except states.TransitionRefused as refused:
        messages.error(request, str(refused))
    return redirect(message)


@require_POST
def message_copy(request, pk: int):
    message = get_object_or_404(SmsMessage.objects.select_related("contact", "account"), pk=pk)
    try:
        copy = compose.copy_to_draft(message, request.user)
    except ValueError as refused:
        messages.error(request, str(refused))
        return redirect(message)
    messages.success(request, "A new draft with the same text: change it if needed, then send it.")
    return redirect("sms:message_edit", copy.pk)


@require_POST
def message_cancel(request, pk: int):
    message = get_object_or_404(SmsMessage, pk=pk)
    try:
        compose.cancel(message, request.user)
    except states.TransitionRefused as refused:
        messages.error(request, str(refused))
    else:
        messages.success(request, "SMS cancelled.")
    return redirect(message)
