"""Shared fixtures. Every test that touches the database runs on SQLite and, in a second
pass of `make test`, on PostgreSQL (DATABASE_URL)."""

import pytest
from django.contrib.auth import get_user_model
from huey.contrib.djhuey import HUEY

from crmsms.crm.models import Account, Contact
from crmsms.sms import breaker, ratelimit
from crmsms.sms.providers.memory import MemoryConnector
from crmsms.users.models import ApiToken, Profile


@pytest.fixture(autouse=True)
def _memory_provider(settings):
    """Tasks run inline (no consumer) and messages go to the in-process memory provider,
    unless a test says otherwise."""
    settings.CRMSMS_SMS_URL = "memory://"
    # Campaigns send at any hour unless a test gives them sending hours (tests run at any
    # time of day; tests/sms/test_sending_hours.py is about them).
    settings.CRMSMS_SENDING_HOURS = ""
    HUEY.immediate = True
    MemoryConnector.reset()
    breaker.reset()  # each test starts with no errors counted and no rate booked
    ratelimit.forget()
    yield
    MemoryConnector.reset()


@pytest.fixture
def user(db):
    user = get_user_model().objects.create_user("alice", password="wonderland-42", first_name="Alice")
    Profile.objects.create(user=user, time_zone="Europe/Paris")
    return user


@pytest.fixture
def web(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def token(user):
    return ApiToken.issue(user)


@pytest.fixture
def api(client, token):
    """A Django test client that sends the bearer token and JSON."""

    class Api:
        def __init__(self):
            self.headers = {"Authorization": f"Bearer {token}"}

        def get(self, path, **params):
            return client.get(path, params, headers=self.headers)

        def post(self, path, data=None, headers=None):
            return client.post(path, data or {}, content_type="application/json", headers={**self.headers, **(headers or {})})

        def patch(self, path, data):
            return client.patch(path, data, content_type="application/json", headers=self.headers)

        def delete(self, path):
            return client.delete(path, headers=self.headers)

    return Api()


@pytest.fixture
def account(db):
    return Account.objects.create(name="Boulangerie Martin", phone_office="+33611223344", sms_opt_in=True)


@pytest.fixture
def contact(db, account):
    return Contact.objects.create(first_name="Camille", last_name="Bernard", phone_mobile="+33612345678",
                                  sms_opt_in=True, account=account)


@pytest.fixture
def sim(tmp_path, settings):
    """The provider simulator on loopback, configured as this test's provider."""
    import json

    from crmsms.sms.simulator import SimulatorConfig, start_in_thread

    server, thread, port = start_in_thread(SimulatorConfig(log_path=tmp_path / "simulator.jsonl", seed=7))
    settings.CRMSMS_SMS_URL = f"simulator://127.0.0.1:{port}"

    def accepted() -> list[dict]:
        path = tmp_path / "simulator.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    server.accepted = accepted
    server.url = settings.CRMSMS_SMS_URL
    yield server
    server.stop()
    thread.join(timeout=5)


@pytest.fixture(autouse=True)
def _fail_on_task_errors():
    """huey logs and swallows an exception raised by a task; a test must not pass over one."""
    from huey.signals import SIGNAL_ERROR

    errors = []

    @HUEY.signal(SIGNAL_ERROR)
    def _record(signal, task, exc=None):
        errors.append(f"{task}: {exc!r}")

    yield
    HUEY.disconnect_signal(_record, SIGNAL_ERROR)
    assert not errors, f"huey task errors: {errors}"
