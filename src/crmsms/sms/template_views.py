"""SMS Templates module: list, detail (with where it is used), create, edit, delete; and the
editor's live preview, shared by the message and template forms."""

from django import forms
from django.contrib import messages
from django.db.models import Count
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from crmsms.crm.views import MODULES
from crmsms.web.listing import Column, listing, parse_id

from . import placeholders, rendering, segments, states, variables
from .forms import (
    MAX_CHARACTERS,
    GuardsStaleEdits,
    SendAtField,
    check_literal_length,
    clean_text,
    placeholder_errors,
)
from .models import SmsCampaign, SmsTemplate

COLUMNS = [Column("name", "Name", "name"), Column("module", "Based on", "module"),
           Column("text", "Message"), Column("used", "Used", "used"), Column("updated", "Changed", "updated_at")]


class TemplateForm(GuardsStaleEdits):
    module = forms.ChoiceField(label="Based on", choices=list(variables.MODULES.items()), widget=forms.RadioSelect,
                               error_messages={"required": "Based on: choose Contacts or Accounts.",
                                               "invalid_choice": "Based on: choose Contacts or Accounts."})
    body = forms.CharField(label="Message", widget=forms.Textarea(attrs={"rows": 6}), strip=False,
                           error_messages={"required": "Message: the text is empty."})

    class Meta:
        model = SmsTemplate
        fields = ["name", "module", "body"]
        error_messages = {"name": {"unique": "Name: another template already has this name.",
                                   "required": "Name: enter a name."}}

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("Name: enter a name.", code="required")
        if SmsTemplate.objects.filter(name__iexact=name).exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError("Name: another template already has this name.", code="unique")
        return name

    def clean_body(self):
        return clean_text(self.cleaned_data["body"])

    def clean_module(self):
        module = self.cleaned_data["module"]
        if self.instance.pk and module != self.instance.module:
            used = self.instance.messages.filter(status=states.DRAFT).count() + self.instance.campaigns.count()
            if used:
                raise forms.ValidationError(
                    f"Based on: drafts or campaigns use this template ({used}); their recipients are "
                    f"{self.instance.get_module_display()}. Duplicate the template to make one for the other module.",
                    code="in_use")
        return module

    def clean(self):
        data = super().clean()
        body, module = data.get("body"), data.get("module")
        if body and module:
            problems = placeholders.problems(body, module)
            if problems:
                self.add_error("body", placeholder_errors(problems))
            else:
                try:
                    check_literal_length(body, module)
                except forms.ValidationError as error:
                    self.add_error("body", error)
        return data


def editor_context(module: str | None) -> dict:
    """What the editor needs: the field lists of every module (the form shows the one of
    its module) and the limits."""
    return {"registry": variables.REGISTRY, "editor_module": module, "max_characters": MAX_CHARACTERS}


def template_list(request):
    qs = SmsTemplate.objects.annotate(used=Count("messages"))
    module = request.GET.get("module", "")
    if module in variables.MODULES:
        qs = qs.filter(module=module)
    context = listing(request, qs, search=["name", "body"], columns=COLUMNS, default_sort="name")
    return render(request, "sms/template_list.html", {**context, "choice_filter": {
        "name": "module", "label": "Based on", "all": "Contacts and Accounts",
        "choices": list(variables.MODULES.items()), "value": module}})


def template_detail(request, pk: int):
    template = get_object_or_404(SmsTemplate, pk=pk)
    used = template.messages.select_related("contact", "account").order_by("-id")
    try:
        compiled = placeholders.compile(template.body, template.module)
    except placeholders.PlaceholderError:  # saved before a variable left the registry
        compiled = None
    return render(request, "sms/template_detail.html", {
        "template": template, "sms_messages": used[:20], "used_count": used.count(),
        "campaigns": template.campaigns.order_by("-send_at")[:20],
        "measure": segments.measure(compiled.literal if compiled else template.body),
        "variables_used": sorted(compiled.names) if compiled else [],
    })


@require_http_methods(["GET", "POST"])
def template_edit(request, pk: int | None = None):
    template = get_object_or_404(SmsTemplate, pk=pk) if pk else None
    asked = request.GET.get("module")
    initial = {} if template else {"module": asked if asked in variables.MODULES else variables.CONTACTS}
    form = TemplateForm(request.POST or None, instance=template or SmsTemplate(created_by=request.user),
                        initial=initial)
    if request.method == "POST" and form.is_valid():
        template = form.save()
        messages.success(request, f"Saved template “{template}”.")
        return redirect(template)
    module = form["module"].value()
    module = module if module in variables.MODULES else variables.CONTACTS
    return render(request, "sms/template_form.html", {"form": form, "template": template, **editor_context(module)})


@require_POST
def template_duplicate(request, pk: int):
    original = get_object_or_404(SmsTemplate, pk=pk)
    base = original.name[:85]  # room for " (copy 123)" within the 100 characters of a name
    name, n = f"{base} (copy)", 2
    while SmsTemplate.objects.filter(name__iexact=name).exists():
        name, n = f"{base} (copy {n})", n + 1
    copy = SmsTemplate.objects.create(name=name, module=original.module, body=original.body,
                                      created_by=request.user)
    messages.success(request, f"Created “{copy}”: rename it and change what you need.")
    return redirect("sms:template_edit", copy.pk)


@require_http_methods(["GET", "POST"])
def template_delete(request, pk: int):
    template = get_object_or_404(SmsTemplate, pk=pk)
    drafts = list(template.campaigns.filter(status__in=[SmsCampaign.DRAFT, SmsCampaign.GENERATE]))
    if drafts:
        messages.error(request, "This template is the associated template of campaigns not generated yet ("
                       + ", ".join(str(c) for c in drafts[:5]) + "): choose another template for them first.")
        return redirect(template)
    if request.method == "POST":
        name = str(template)
        template.delete()
        messages.success(request, f"Deleted template “{name}”. Messages made from it keep their text.")
        return redirect("sms:templates")
    return render(request, "sms/template_delete.html", {"template": template, "used_count": template.messages.count()})


@require_POST
def preview(request):
    """The editor's live preview: the text exactly as it would leave for one record (or,
    without a record, the text's own length), with its encoding and parts, or the problems
    with positions."""
    module = request.POST.get("module", "")
    if module not in variables.REGISTRY:
        return JsonResponse({"problems": [{"position": 0, "code": "module", "message": "Unknown module."}]},
                            status=400)
    try:
        body = clean_text(request.POST.get("body", ""))
    except forms.ValidationError as error:
        return JsonResponse({"problems": [{"position": 0, "code": error.code, "message": error.messages[0]}]})
    problems = placeholders.problems(body, module)
    if problems:
        return JsonResponse({"problems": [p.__dict__ for p in problems]})
    record_id = parse_id(request.POST.get("record"))
    if record_id is None:
        measure = segments.measure(placeholders.compile(body, module).literal)
        return JsonResponse({"problems": [], "text": None, "encoding": measure.encoding, "segments": measure.segments})
    record = get_object_or_404(MODULES[module].model, pk=record_id)
    try:
        send_at = SendAtField(required=False).clean(request.POST.get("send_at") or None)
    except forms.ValidationError:
        send_at = timezone.now()  # the form says what is wrong with the date; the preview goes on
    result = rendering.preview(record, body, request.user, when=send_at)
    return JsonResponse({"problems": [], "text": result.text, "encoding": result.encoding, "segments": result.segments,
                         "characters": len(result.text), "empty": result.empty})
