"""The login page, with password guessing slowed down: after CRMSMS_LOGIN_MAX_FAILURES
failed attempts for one username within CRMSMS_LOGIN_WINDOW_MINUTES, that username cannot
log in for the rest of the window, even with the right password; an address that fails
ten times as often is refused for every username. The page says so and when to try again
(HTTP 429). A successful login clears the username's failures."""

from datetime import timedelta

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.utils import timezone

from .models import LoginFailure


def _client_ip(request) -> str:
    # REMOTE_ADDR only: X-Forwarded-For can be written by anyone unless a trusted proxy
    # rewrites it, and a throttle that trusts it can be dodged.
    return request.META.get("REMOTE_ADDR", "")[:45]


def blocked_until(username: str, ip: str):
    """When this username (or this address) may try again, if it is blocked now."""
    window = timedelta(minutes=settings.CRMSMS_LOGIN_WINDOW_MINUTES)
    since = timezone.now() - window
    LoginFailure.objects.filter(at__lt=since).delete()  # what no longer counts
    limit = settings.CRMSMS_LOGIN_MAX_FAILURES
    for failures, most in ((LoginFailure.objects.filter(username=username, at__gte=since), limit),
                           (LoginFailure.objects.filter(ip=ip, at__gte=since), limit * 10)):
        times = list(failures.order_by("-at").values_list("at", flat=True)[:most])
        if len(times) >= most:
            return times[-1] + window
    return None


class LoginView(auth_views.LoginView):
    template_name = "web/login.html"

    def post(self, request, *args, **kwargs):
        username, ip = request.POST.get("username", "").strip().lower()[:150], _client_ip(request)
        until = blocked_until(username, ip)
        if until:
            minutes = max(1, round((until - timezone.now()).total_seconds() / 60))
            form = self.get_form()
            return self.render_to_response(self.get_context_data(
                form=form, blocked=f"Too many failed attempts: try again in {minutes} minute{'s' if minutes > 1 else ''}."),
                status=429)
        response = super().post(request, *args, **kwargs)
        if request.user.is_authenticated:
            LoginFailure.objects.filter(username=username).delete()
        else:
            LoginFailure.objects.create(username=username, ip=ip)
        return response
