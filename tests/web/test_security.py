"""Login everywhere but the login page, health, static files and webhooks; CSRF on forms."""

import pytest
from django.contrib.auth import get_user_model
from django.urls import URLPattern, URLResolver, get_resolver

pytestmark = pytest.mark.django_db

PUBLIC = {"/login/", "/health"}
NOT_FOUND = {"/api/v1/"}  # django-ninja's root: no page at all, for anyone


def all_paths(resolver=None, prefix=""):
    """Every URL pattern of the project, with sample values in place of converters, so a
    new route cannot be added without this test seeing it."""
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from all_paths(entry, route)
        elif isinstance(entry, URLPattern):
            path = route.replace("<int:pk>", "1").replace("<int:message_id>", "1").replace("^", "").replace("$", "")
            for name in ("account_id", "contact_id", "object_id"):
                path = path.replace(f"<int:{name}>", "1").replace(f"<path:{name}>", "1").replace(f"<{name}>", "1")
            if "<" in path or "(?P" in path:
                continue  # admin's regex catch-alls: covered by admin's own login
            yield "/" + path


def test_every_url_refuses_anonymous_requests(client):
    paths = sorted(set(all_paths()))
    assert "/contacts/" in paths and "/api/v1/messages" in paths and "/sms/1/cancel/" in paths
    for path in paths:
        if path in PUBLIC:
            continue
        if path in NOT_FOUND:
            assert client.get(path).status_code == 404
            continue
        for method in ("get", "post"):
            response = getattr(client, method)(path)
            if response.status_code == 302:
                assert response["Location"].startswith("/login/") or "/admin/login/" in response["Location"], (method, path)
            else:
                assert response.status_code in (401, 403, 405), (method, path, response.status_code)


def test_health_is_public(client):
    response = client.get("/health")
    assert response.status_code == 200 and response.json() == {"status": "ok", "database": "ok"}


def test_csrf_is_enforced_on_forms(user):
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    response = browser.post("/contacts/new/", {"last_name": "Sneaky"})
    assert response.status_code == 403


def test_login_with_password_and_passwords_are_hashed(client, user):
    assert user.password.startswith(("pbkdf2_", "argon2", "bcrypt", "scrypt"))
    page = client.get("/login/")
    assert page.status_code == 200
    response = client.post("/login/", {"username": "alice", "password": "wonderland-42"})
    assert response.status_code == 302
    assert client.get("/contacts/").status_code == 200
    bad = client.post("/login/", {"username": "alice", "password": "nope"})
    assert "didn't match" in bad.content.decode()


def test_preferences_set_the_time_zone_used_for_dates(web, user):
    from crmsms.users.models import time_zone_of

    assert web.post("/preferences/", {"time_zone": "America/New_York"}).status_code == 302
    assert time_zone_of(user) == "America/New_York"
    refused = web.post("/preferences/", {"time_zone": "Mars/Olympus"})
    assert refused.status_code == 200 and "Select a valid choice" in refused.content.decode()
    assert time_zone_of(user) == "America/New_York"


def test_not_found_page_keeps_the_layout(web):
    response = web.get("/contacts/999999/")
    assert response.status_code == 404
    page = response.content.decode()
    assert "Not found" in page and "SMS Messages" in page  # the module bar is there


def test_health_does_not_leak_database_errors(client, monkeypatch):
    from django.db import OperationalError
    from django.db.backends.utils import CursorWrapper

    def broken(self, sql, params=None):
        raise OperationalError("password authentication failed for user secret_admin")

    monkeypatch.setattr(CursorWrapper, "execute", broken)
    response = client.get("/health")
    assert response.status_code == 503
    assert response.json() == {"status": "error", "database": "unavailable"}


def test_password_guessing_is_slowed_down(client, user, settings):
    settings.CRMSMS_LOGIN_MAX_FAILURES = 3
    for _ in range(3):
        assert client.post("/login/", {"username": "alice", "password": "guess"}).status_code == 200
    # Blocked now, even with the right password, and told for how long.
    answer = client.post("/login/", {"username": "Alice", "password": "wonderland-42"})
    assert answer.status_code == 429 and "Too many failed attempts: try again in 15 minutes" in answer.content.decode()
    assert client.get("/").status_code == 302  # not logged in
    # The admin's own login page is not reachable without a login: it leads to this one.
    answer = client.post("/admin/login/", {"username": "alice", "password": "wonderland-42"})
    assert answer.status_code == 302 and answer["Location"].startswith("/login/")
    # Another user is not blocked by alice's failures (the address has 30 before it is).
    get_user_model().objects.create_user("bob", password="builder-42-x")
    assert client.post("/login/", {"username": "bob", "password": "builder-42-x"}).status_code == 302
    # Once the window has passed, alice can log in, and that clears her failures.
    from datetime import timedelta

    from django.utils import timezone

    from crmsms.users.models import LoginFailure

    LoginFailure.objects.update(at=timezone.now() - timedelta(minutes=16))
    client.logout()
    assert client.post("/login/", {"username": "alice", "password": "wonderland-42"}).status_code == 302
    assert not LoginFailure.objects.filter(username="alice").exists()
