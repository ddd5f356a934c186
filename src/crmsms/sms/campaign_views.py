"""SMS Campaigns module: list, create, edit (while Draft), the campaign page (recipients,
forecast, progress, statistics, messages) and its actions."""

from datetime import timedelta

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from crmsms.crm.views import MODULES
from crmsms.web import csvfile
from crmsms.web.listing import Column, CountedPaginator, listing, parse_id, search_filter

from . import campaigns, chart, generation, sending_hours, states, variables
from .forms import GuardsStaleEdits, SendAtField
from .models import SmsCampaign, SmsTemplate

C = SmsCampaign
FORECAST_INLINE = 5000
COLUMNS = [Column("name", "Name", "name"), Column("status", "Status", "status"),
           Column("send_at", "Date of dispatch", "send_at"), Column("module", "Module", "module"),
           Column("template", "Template", "template__name")]


class CampaignForm(GuardsStaleEdits):
    module = forms.ChoiceField(label="Associated module", choices=list(variables.MODULES.items()),
                               widget=forms.RadioSelect,
                               error_messages={"required": "Associated module: choose Contacts or Accounts."})
    send_at = SendAtField(label="Date of dispatch", required=True,
                          widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
                          help_text="In your time zone. In the past: sent as soon as generated (within the sending hours below).",
                          error_messages={"required": "Date of dispatch: enter a date and a time.",
                                          "invalid": "Date of dispatch: enter a date and a time."})

    hours_days = forms.MultipleChoiceField(
        label="Days", required=False, widget=forms.CheckboxSelectMultiple(attrs={"class": "inline-choices"}),
        choices=[(name, label[:3]) for name, label in zip(sending_hours.DAY_NAMES, sending_hours.DAY_LABELS, strict=True)])

    class Meta:
        model = SmsCampaign
        fields = ["name", "send_at", "module", "template", "respect_hours", "hours_start", "hours_end", "hours_days"]
        widgets = {"hours_start": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
                   "hours_end": forms.TimeInput(attrs={"type": "time"}, format="%H:%M")}
        error_messages = {
            "hours_start": {"invalid": "Sending hours: enter the start as HH:MM.", "required": "Sending hours: enter the start."},
            "hours_end": {"invalid": "Sending hours: enter the end as HH:MM.", "required": "Sending hours: enter the end."},
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["template"].queryset = SmsTemplate.objects.order_by("module", "name")
        self.fields["template"].required = False
        self.fields["template"].label_from_instance = lambda t: f"{t.name} ({t.get_module_display()})"
        self.initial["hours_days"] = [sending_hours.DAY_NAMES[int(d)] for d in self.instance.hours_days]
        # Needed only when the campaign keeps to sending hours (see clean).
        self.fields["hours_start"].required = self.fields["hours_end"].required = False
        if self.instance.pk and self.instance.recipients.exists():
            # The recipients are records of the module: changing it would orphan them.
            self.fields["module"].disabled = True

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("Name: enter a name.", code="required")
        return name

    def details(self):
        """The campaign's own fields, shown before the sending hours' fieldset."""
        return [self[name] for name in ("name", "send_at", "module", "template")]

    def clean_hours_days(self):
        return "".join(str(sending_hours.DAY_NAMES.index(name)) for name in sorted(
            set(self.cleaned_data["hours_days"]), key=sending_hours.DAY_NAMES.index))

    def clean(self):
        data = super().clean()
        start, end = data.get("hours_start"), data.get("hours_end")
        # Checked even while not used, so turning them on later cannot meet a bad window.
        if start and end and not start < end:
            self.add_error("hours_end", forms.ValidationError(
                f"Sending hours: the end ({end:%H:%M}) must be after the start ({start:%H:%M}).", code="order"))
        if data.get("respect_hours"):
            for name, value, which in (("hours_start", start, "start"), ("hours_end", end, "end")):
                if name in data and value is None:
                    self.add_error(name, forms.ValidationError(f"Sending hours: enter the {which} (HH:MM).",
                                                               code="required"))
            if not data.get("hours_days"):
                self.add_error("hours_days", forms.ValidationError(
                    "Sending hours: tick at least one day.", code="required"))
        else:
            # Not used: what is left blank keeps its value, for when they are turned on again.
            for name in ("hours_start", "hours_end", "hours_days"):
                if not data.get(name) and name not in self.errors:
                    data[name] = getattr(self.instance, name)
        template, module = data.get("template"), data.get("module")
        if template and module and template.module != module:
            self.add_error("template", forms.ValidationError(
                f"Associated template: “{template}” is based on {template.get_module_display()}, "
                f"not {variables.MODULES[module]}.", code="module"))
        return data


def campaign_list(request):
    qs = SmsCampaign.objects.select_related("template")
    status = request.GET.get("status", "")
    if status in dict(C.STATUSES):
        qs = qs.filter(status=status)
    context = listing(request, qs, search=["name"], columns=COLUMNS, default_sort="-send_at")
    return render(request, "sms/campaign_list.html", {**context, "choice_filter": {
        "name": "status", "label": "Status", "all": "Any status", "choices": C.STATUSES, "value": status}})


@require_http_methods(["GET", "POST"])
def campaign_edit(request, pk: int | None = None):
    campaign = get_object_or_404(SmsCampaign, pk=pk) if pk else None
    if campaign and not campaign.is_editable:
        messages.error(request, f"This campaign is {campaign.get_status_display()}: only a Draft can be edited.")
        return redirect(campaign)
    initial = {} if campaign else {"module": variables.CONTACTS,
                                   "send_at": timezone.localtime().replace(second=0, microsecond=0)}
    form = CampaignForm(request.POST or None, instance=campaign or SmsCampaign(created_by=request.user),
                        initial=initial)
    if request.method == "POST" and form.is_valid():
        campaign = form.save()
        messages.success(request, f"Saved campaign “{campaign}”." + ("" if campaign.recipients.exists()
                                                                      else " Now add its recipients."))
        return redirect(campaign)
    return render(request, "sms/campaign_form.html", {"form": form, "campaign": campaign})


def campaign_detail(request, pk: int):
    campaign = get_object_or_404(SmsCampaign.objects.select_related("template", "created_by"), pk=pk)
    module = MODULES[campaign.module]
    field_name = campaigns.record_field(campaign.module)
    recipients = campaign.recipients.select_related(field_name).order_by("-id")
    # Once generated, the campaign knows its number of recipients: no count of a million rows.
    recipient_page = (Paginator(recipients, 25) if campaign.is_editable or not campaign.recipients_total
                      else CountedPaginator(recipients, 25, count=campaign.recipients_total)).get_page(
        request.GET.get("rpage"))
    context = {
        "campaign": campaign, "module": module, "recipient_page": recipient_page,
        "leaves_now": campaign.send_at <= timezone.now(),
        "recipient_count": recipient_page.paginator.count, "field_name": field_name,
    }
    if campaign.is_editable:
        # Counting every recipient takes seconds on a large list: then only when asked.
        if recipient_page.paginator.count <= FORECAST_INLINE or request.GET.get("forecast"):
            context["forecast"] = generation.forecast(campaign)
        else:
            context["forecast_on_demand"] = True
        context["import_report"] = request.session.pop(f"import-report-{campaign.pk}", None)
        pick = request.GET.get("pick", "").strip()
        if pick:
            found = module.model.objects.filter(search_filter(pick, module.search, module.phone_fields))
            context.update(pick=pick, pick_count=found.count(), picked=found.order_by(*module.model._meta.ordering)[:25])
    else:
        counts = campaigns.stats(campaign)
        status_filter = request.GET.get("status", "")
        sms = campaign.messages.select_related("contact", "account").order_by("id")
        shown = sum(counts.values())
        if status_filter in states.LABELS:
            sms, shown = sms.filter(status=status_filter), counts[status_filter]
        done = counts["delivered"] + counts["undelivered"]
        context.update(
            counts=[(s, label, counts[s]) for s, label in states.CHOICES if counts[s]],
            total=sum(counts.values()), status_filter=status_filter,
            delivered_ratio=(counts["delivered"] / done) if done else None,
            retryable=campaigns.retryable_count(campaign) if counts["failed"] else 0,
            chart=chart.campaign_chart(campaign),
            next_due=_next_due(campaign) if counts["to_send"] else None,
            sms_page=CountedPaginator(sms, 25, count=shown).get_page(request.GET.get("page")),
            progress=(100 * (campaign.generated + campaign.skipped) // campaign.recipients_total)
            if campaign.recipients_total else 0,
        )
    return render(request, "sms/campaign_detail.html", context)


def _next_due(campaign: SmsCampaign):
    """When the campaign's next SMS may leave, if that is later than now (its sending hours,
    a retry's delay): the page then says why nothing is leaving."""
    due = campaign.messages.filter(status=states.TO_SEND).order_by("due_at").values_list("due_at", flat=True).first()
    return due if due and due > timezone.now() + timedelta(seconds=30) else None


@require_POST
def campaign_recipients(request, pk: int):
    """Add the ticked records, or every record matching a search; or remove ticked ones."""
    campaign = get_object_or_404(SmsCampaign, pk=pk)
    module = MODULES[campaign.module]
    ids = [pk for pk in map(parse_id, request.POST.getlist("ids")) if pk is not None]
    try:
        if request.POST.get("action") == "remove":
            if not ids:
                messages.error(request, "Tick the recipients to remove first.")
                return redirect(campaign)
            removed = campaigns.remove_recipients(campaign, ids)
            messages.success(request, f"Removed {removed} recipient{'s' if removed != 1 else ''}.")
        else:
            if request.POST.get("all_matching"):
                query = request.POST.get("pick", "").strip()
                ids = module.model.objects.filter(search_filter(query, module.search, module.phone_fields)) \
                    .values_list("pk", flat=True)
            if not ids:
                messages.error(request, "Tick the records to add first.")
                return redirect(campaign)
            added = campaigns.add_recipients(campaign, ids)
            messages.success(request, f"Added {added} recipient{'s' if added != 1 else ''}."
                             + ("" if added else " They were already in the campaign."))
    except campaigns.CampaignError as error:
        messages.error(request, str(error))
    return redirect(campaign)


@require_POST
def campaign_import(request, pk: int):
    """Recipients from a CSV file: ids or phone numbers in the first column."""
    campaign = get_object_or_404(SmsCampaign, pk=pk)
    upload = request.FILES.get("file")
    if upload is None:
        messages.error(request, "CSV file: choose a file to import.")
        return redirect(campaign)
    if upload.size > csvfile.MAX_BYTES:
        messages.error(request, f"CSV file: at most {csvfile.MAX_BYTES // (1024 * 1024)} MB.")
        return redirect(campaign)
    text = csvfile.decode(upload.read())
    try:
        report = campaigns.import_recipients(campaign, csvfile.lines(text))
    except campaigns.CampaignError as error:
        messages.error(request, str(error))
        return redirect(campaign)
    request.session[f"import-report-{campaign.pk}"] = {
        "added": report.added, "matched": report.matched, "unmatched": report.unmatched[:200],
        "unmatched_total": len(report.unmatched), "file": upload.name[:100],
    }
    messages.success(request, f"Imported {upload.name}: {report.matched} matched, {report.added} added, "
                              f"{len(report.unmatched)} line{'s' if len(report.unmatched) != 1 else ''} not matched.")
    return redirect(f"{campaign.get_absolute_url()}#recipients")


@require_POST
def campaign_action(request, pk: int):
    campaign = get_object_or_404(SmsCampaign.objects.select_related("template"), pk=pk)
    action = request.POST.get("action")
    try:
        if action == "generate":
            campaigns.start_generation(campaign)
            messages.success(request, "Generating the SMS Messages: the scheduled tasks are on it.")
        elif action == "pause":
            campaigns.pause(campaign)
            messages.success(request, "Campaign paused: no new SMS leaves until you resume it.")
        elif action == "resume":
            campaigns.resume(campaign)
            messages.success(request, "Campaign resumed.")
        elif action == "cancel":
            n = campaigns.cancel(campaign, request.user)
            messages.success(request, f"Campaign cancelled: {n} SMS not sent yet were cancelled.")
        elif action == "retry_failed":
            n = campaigns.retry_failed(campaign, request.user)
            messages.success(request, f"{n} failed SMS queued again." if n else "No failed SMS can be retried.")
        else:
            messages.error(request, "Unknown action.")
    except campaigns.CampaignError as error:
        messages.error(request, str(error))
    return redirect(campaign)


@require_http_methods(["GET", "POST"])
def campaign_delete(request, pk: int):
    campaign = get_object_or_404(SmsCampaign, pk=pk)
    if not campaign.is_editable:
        messages.error(request, "Only a Draft campaign can be deleted; cancel it instead.")
        return redirect(campaign)
    if request.method == "POST":
        name = str(campaign)
        campaign.delete()
        messages.success(request, f"Deleted campaign “{name}”.")
        return redirect("sms:campaigns")
    return render(request, "sms/campaign_delete.html", {"campaign": campaign})
