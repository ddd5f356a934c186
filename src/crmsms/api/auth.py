from django.utils import timezone
from ninja.security import HttpBearer

from crmsms.users.models import ApiToken


class TokenAuth(HttpBearer):
    """`Authorization: Bearer <token>`, tokens made by `crmsms api-token USERNAME`."""

    def authenticate(self, request, token: str):
        user = ApiToken.user_for(token)
        if user is not None:
            ApiToken.objects.filter(user=user, last_used_at__isnull=True).update(last_used_at=timezone.now())
            request.user = user
        return user
