import zoneinfo

from django.utils import timezone
from ninja.security import HttpBearer

from crmsms.crm import consent
from crmsms.crm.models import ConsentChange
from crmsms.users.models import ApiToken, zone_in


class TokenAuth(HttpBearer):
    """`Authorization: Bearer <token>`, tokens made by `crmsms api-token USERNAME`."""

    def authenticate(self, request, token: str):
        user = ApiToken.user_for(token)
        if user is not None:
            request.user = user
            consent.set_acting(ConsentChange.API, user.get_username())
            # A send_at without a zone is read in the user's own zone, as in the UI.
            # (The profile came with the token: no query.)
            timezone.activate(zoneinfo.ZoneInfo(zone_in(getattr(user, "profile", None))))
        return user
