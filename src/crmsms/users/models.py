"""What crmsms adds to Django's users: a time zone and API tokens."""

import hashlib
import secrets
import zoneinfo
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(
            f"{value!r} is not a time zone name such as Europe/Paris.", code="invalid_time_zone"
        )


class Profile(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile")
    # Dates are stored in UTC and shown, and typed, in this zone.
    time_zone = models.CharField(max_length=64, validators=[validate_time_zone])

    def __str__(self) -> str:
        return f"{self.user} ({self.time_zone})"


def time_zone_of(user) -> str:
    """The user's time zone, read now."""
    return zone_in(Profile.objects.filter(user=user).only("time_zone").first())


def zone_in(profile: Profile | None) -> str:
    return profile.time_zone if profile else settings.CRMSMS_DEFAULT_TIME_ZONE


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiToken(models.Model):
    """A bearer token for the REST API. Only a SHA-256 digest is stored: a stolen database
    does not hand out working tokens."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    digest = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    @classmethod
    def issue(cls, user, name: str = "") -> str:
        """Create a token for `user` and return the raw value (shown once, never stored)."""
        raw = "crmsms_" + secrets.token_urlsafe(32)
        cls.objects.create(user=user, digest=_digest(raw), name=name)
        return raw

    @classmethod
    def user_for(cls, raw: str):
        """The active user `raw` belongs to (with its profile, if any, loaded), or None. Notes when the token was last used
        (at most once a minute, so that reading the API does not mean writing each time)."""
        token = cls.objects.select_related("user__profile").filter(digest=_digest(raw)).first()
        if token is None or not token.user.is_active:
            return None
        now = timezone.now()
        if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
            cls.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user


class LoginFailure(models.Model):
    """A failed login: recent ones slow down password guessing (users/login.py). Kept in the
    database so that every web process, and a restarted one, sees the same count."""

    username = models.CharField(max_length=150, db_index=True)  # as typed, lowercased
    ip = models.CharField(max_length=45, db_index=True)
    at = models.DateTimeField(default=timezone.now, db_index=True)
