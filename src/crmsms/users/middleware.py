"""Login everywhere by default: a new page cannot be left open by forgetting a decorator."""

import zoneinfo

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.utils import timezone

from crmsms.crm.models import ConsentChange

from .models import time_zone_of

# Paths that stand on their own authentication (or need none): the login page, the health
# check, static assets, provider webhooks (they verify the provider's signature) and the
# API (bearer tokens, checked by django-ninja on every operation).
PUBLIC_PREFIXES = ("/login/", "/health", "/static/", "/webhooks/", "/api/")


class LoginRequiredMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path.startswith(PUBLIC_PREFIXES) and not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), settings.LOGIN_URL)
        return self.get_response(request)


class ConsentSourceMiddleware:
    """Changes of an SMS opt-in made during a web request are the user's, from the web UI
    (the API's token authentication says "API" instead)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from crmsms.crm import consent

        source = ConsentChange.UI if request.user.is_authenticated else ConsentChange.SYSTEM
        actor = request.user.get_username() if request.user.is_authenticated else ""
        with consent.acting(source, actor):
            return self.get_response(request)


class UserTimezoneMiddleware:
    """Show and read dates in the user's own time zone; they are stored in UTC."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.user.is_authenticated:
            timezone.activate(zoneinfo.ZoneInfo(time_zone_of(request.user)))
        else:
            timezone.activate(zoneinfo.ZoneInfo(settings.CRMSMS_DEFAULT_TIME_ZONE))
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
