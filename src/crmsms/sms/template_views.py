"""SMS Templates module: list, detail (with where it is used), create, edit, delete; and the
editor's live preview, shared by the message and template forms."""

from django import forms
from django.contrib import messages
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from crmsms.crm.views import MODULES
from crmsms.web.listing import Column, listing

from . import placeholders, rendering, segments, variables
from .forms import MAX_CHARACTERS, clean_text, placeholder_errors
from .models import SmsTemplate

COLUMNS = [Column("name", "Name", "name"), Column("module", "Based on", "module"),
           Column("text", "Message"), Column("updated", "Changed", "updated_at")]


class TemplateForm(forms.ModelForm):
    class Meta:
        model = SmsTemplate
        fields = ["name", "module", "body"]
        widgets = {"module": forms.RadioSelect, "body": forms.Textarea(attrs={"rows": 6})}
        error_messages = {"name": {"unique": "Name: another template already has this name."}}

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("Name: enter a name.", code="required")
        return name

    def clean_body(self):
        return clean_text(self.cleaned_data["body"])

    def clean(self):
        data = super().clean()
        body, module = data.get("body"), data.get("module")
        if body and module:
            problems = placeholders.problems(body, module)
            if problems:
                self.add_error("body", placeholder_errors(problems))
        return data


def editor_context(module: str | None) -> dict:
    """What the editor needs: the field lists of every module (the form shows the one of
    its module) and the limits."""
    return {"registry": variables.REGISTRY, "editor_module": module, "max_characters": MAX_CHARACTERS}


def template_list(request):
    context = listing(request, SmsTemplate.objects.all(), search=["name", "body"], columns=COLUMNS,
                      default_sort="name")
    return render(request, "sms/template_list.html", context)


def template_detail(request, pk: int):
    template = get_object_or_404(SmsTemplate, pk=pk)
    used = template.messages.select_related("contact", "account").order_by("-id")
    return render(request, "sms/template_detail.html", {
        "template": template, "sms_messages": used[:20], "used_count": used.count(),
        "measure": segments.measure(template.body),
        "variables_used": sorted(placeholders.compile(template.body, template.module).names)
        if not placeholders.problems(template.body, template.module) else [],
    })


@require_http_methods(["GET", "POST"])
def template_edit(request, pk: int | None = None):
    template = get_object_or_404(SmsTemplate, pk=pk) if pk else None
    initial = {} if template else {"module": request.GET.get("module", variables.CONTACTS)}
    form = TemplateForm(request.POST or None, instance=template, initial=initial)
    if request.method == "POST" and form.is_valid():
        template = form.save(commit=False)
        if template.created_by_id is None:
            template.created_by = request.user
        template.save()
        messages.success(request, f"Saved template “{template}”.")
        return redirect(template)
    module = form["module"].value() or variables.CONTACTS
    return render(request, "sms/template_form.html", {"form": form, "template": template, **editor_context(module)})


@require_http_methods(["GET", "POST"])
def template_delete(request, pk: int):
    template = get_object_or_404(SmsTemplate, pk=pk)
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
    body = segments.normalise(request.POST.get("body", ""))
    problems = placeholders.problems(body, module)
    if problems:
        return JsonResponse({"problems": [p.__dict__ for p in problems]})
    record_id = request.POST.get("record", "")
    if not record_id.isdigit():
        measure = segments.measure(body)
        return JsonResponse({"problems": [], "text": None, "encoding": measure.encoding, "segments": measure.segments})
    record = get_object_or_404(MODULES[module].model, pk=int(record_id))
    result = rendering.preview(record, body, request.user)
    return JsonResponse({"problems": [], "text": result.text, "encoding": result.encoding, "segments": result.segments,
                         "characters": len(result.text)})
