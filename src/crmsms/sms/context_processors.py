"""What every page of a signed-in user shows about sending: provider accounts paused because
their errors spiked (sms/breaker.py). One small query; none for anonymous pages."""

from django.utils import timezone

from .models import ProviderPause


def provider_pauses(request) -> dict:
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    now = timezone.now()
    pauses = list(ProviderPause.objects.order_by("account"))
    for pause in pauses:
        pause.trying = pause.until <= now  # the pause ended: a trial message is on its way
    return {"paused_providers": pauses}
