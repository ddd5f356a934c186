"""List, detail, create, edit and delete for contacts and accounts.

The two modules differ only in their model, form and columns, so each view takes a
`Module` describing them instead of being written twice.
"""

from dataclasses import dataclass
from datetime import timedelta

from django.contrib import messages
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from crmsms.sms import eligibility, states
from crmsms.sms.models import InboundSms, SmsCampaign

from ..web import csvfile
from ..web.listing import Column, listing
from . import importing
from .forms import AccountForm, ContactForm
from .models import Account, Contact, OptOut


@dataclass(frozen=True)
class Module:
    key: str  # "contacts" / "accounts"
    singular: str
    model: type
    form: type
    search: list[str]
    phone_fields: list[str]
    columns: list[Column]
    default_sort: str

    def queryset(self) -> QuerySet:
        qs = self.model.objects.all()
        return qs.select_related("account") if self.model is Contact else qs


CONTACTS = Module(
    "contacts", "contact", Contact, ContactForm,
    search=["first_name", "last_name", "email", "title", "account__name"],
    phone_fields=["phone_mobile"],
    columns=[
        Column("name", "Name", "last_name"), Column("title", "Title", "title"),
        Column("account", "Account", "account__name"), Column("mobile", "Mobile", "phone_mobile"),
        Column("opt_in", "SMS opt in", "sms_opt_in"),
    ],
    default_sort="name",
)
ACCOUNTS = Module(
    "accounts", "account", Account, AccountForm,
    search=["name", "billing_city", "website"],
    phone_fields=["phone_office"],
    columns=[
        Column("name", "Name", "name"), Column("city", "City", "billing_city"),
        Column("phone", "Phone", "phone_office"), Column("opt_in", "SMS opt in", "sms_opt_in"),
    ],
    default_sort="name",
)
MODULES = {m.key: m for m in (CONTACTS, ACCOUNTS)}


def record_list(request, module: str):
    mod = MODULES[module]
    context = listing(request, mod.queryset(), search=mod.search, phone_fields=mod.phone_fields,
                      columns=mod.columns, default_sort=mod.default_sort)
    return render(request, "crm/record_list.html", {"module": mod, **context})


def record_detail(request, module: str, pk: int):
    mod = MODULES[module]
    record = get_object_or_404(mod.queryset(), pk=pk)
    sms = record.sms_messages.all()[:50]
    opt_out = OptOut.objects.filter(number=record.sms_number).first() if record.sms_number else None
    # The campaigns it was part of, with the status of its message in each; and the draft
    # campaigns it is a recipient of (no message yet).
    campaign_messages = record.sms_messages.filter(campaign__isnull=False).select_related("campaign")[:20]
    draft_campaigns = SmsCampaign.objects.filter(
        status=SmsCampaign.DRAFT, **{f"recipients__{mod.singular}": record})[:20]
    return render(request, f"crm/{mod.singular}_detail.html", {
        "module": mod, "record": record, "sms_messages": sms,
        "campaign_messages": campaign_messages, "draft_campaigns": draft_campaigns,
        "refusal": _refusal(record, opt_out),
        "sms_total": record.sms_messages.count(),
        # Consent: its ledger, whether its number asked for no more SMS, and its replies.
        "consent_changes": record.consent.all()[:20],
        "opt_out": opt_out,
        "replies": (InboundSms.objects.filter(from_number=record.sms_number).prefetch_related("answers")[:20]
                    if record.sms_number else []),
        # While a message is on its way, the sub-panel refreshes itself (see app.js).
        "in_flight": record.sms_messages.filter(
            status__in=[states.TO_SEND, states.SENDING], due_at__lte=timezone.now() + timedelta(minutes=1)
        ).exists(),
    })


def _refusal(record, opt_out: OptOut | None) -> eligibility.Refusal | None:
    """Why no SMS can be sent to this record now, if so: a number that replied STOP first."""
    if opt_out:
        return eligibility.Refusal("opted_out", f"{record.sms_number} asked for no more SMS on "
                                                f"{opt_out.since:%Y-%m-%d} ({opt_out.detail or opt_out.get_source_display()}).")
    return eligibility.check(record)


@require_http_methods(["GET", "POST"])
def record_edit(request, module: str, pk: int | None = None):
    mod = MODULES[module]
    record = get_object_or_404(mod.model, pk=pk) if pk else None
    form = mod.form(request.POST or None, instance=record)
    if request.method == "POST" and form.is_valid():
        record = form.save()
        messages.success(request, f"Saved {mod.singular} {record}.")
        waiting = record.sms_messages.filter(status=states.TO_SEND).count()
        if waiting and not record.sms_opt_in:
            messages.warning(request, f"{record} does not opt in to SMS: {waiting} SMS waiting to be sent "
                                      "will be skipped, not sent, unless « SMS opt in » is ticked again before then.")
        return redirect(record)
    return render(request, "crm/record_form.html", {"module": mod, "form": form, "record": record})


@require_http_methods(["GET", "POST"])
def record_import(request, module: str):
    """Contacts or accounts from a CSV file (crm/importing.py): the form, then its report."""
    mod = MODULES[module]
    report, error = None, ""
    reason = request.POST.get("consent_reason", "")
    if request.method == "POST":
        upload = request.FILES.get("file")
        if upload is None:
            error = "CSV file: choose a file to import."
        elif upload.size > csvfile.MAX_BYTES:
            error = f"CSV file: at most {csvfile.MAX_BYTES // (1024 * 1024)} MB."
        else:
            try:
                report = importing.import_records(mod, csvfile.decode(upload.read()), user=request.user,
                                                  file_name=upload.name, consent_reason=reason)
            except importing.ImportRefused as refused:
                error = str(refused)
    example = ("last_name,first_name,phone_mobile,email,account,sms_opt_in" if mod.key == "contacts"
               else "name,phone_office,billing_city,website,sms_opt_in")
    return render(request, "crm/record_import.html", {"module": mod, "report": report, "error": error,
                                                      "reason": reason, "example": example,
                                                      "max_rows": importing.MAX_ROWS},
                  status=400 if error or (report and not report.imported) else 200)


@require_http_methods(["GET", "POST"])
def record_delete(request, module: str, pk: int):
    mod = MODULES[module]
    record = get_object_or_404(mod.model, pk=pk)
    waiting = record.sms_messages.filter(status__in=states.WAITING).count()
    if request.method == "POST":
        name = str(record)
        record.delete()
        messages.success(request, f"Deleted {mod.singular} {name}."
                         + (f" {waiting} unsent SMS marked skipped." if waiting else ""))
        return redirect(f"crm:{module}")
    return render(request, "crm/record_delete.html", {"module": mod, "record": record, "waiting": waiting})
