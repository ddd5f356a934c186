import zoneinfo

from django import forms
from django.contrib import messages
from django.shortcuts import redirect, render

from .models import Profile, time_zone_of


class PreferencesForm(forms.Form):
    time_zone = forms.ChoiceField(
        label="Time zone", help_text="Sending dates are shown and typed in this zone.",
        choices=[(z, z) for z in sorted(zoneinfo.available_timezones()) if "/" in z and not z.startswith("Etc/")],
    )


def preferences(request):
    form = PreferencesForm(request.POST or None, initial={"time_zone": time_zone_of(request.user)})
    if request.method == "POST" and form.is_valid():
        Profile.objects.update_or_create(user=request.user, defaults={"time_zone": form.cleaned_data["time_zone"]})
        messages.success(request, f"Time zone set to {form.cleaned_data['time_zone']}.")
        return redirect("preferences")
    return render(request, "users/preferences.html", {"form": form})
