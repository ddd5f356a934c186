"""The simulator connector against the real simulator over loopback HTTP: each answer maps
to the outcome DESIGN §4 gives it, and the simulator's log shows what it really took."""

import json
import os
import select
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from django.test import override_settings

import crmsms
from crmsms.sms.providers import connector_for
from crmsms.sms.providers.base import ACCEPTED, AMBIGUOUS, FAILED, RETRY_LATER, OutgoingSms
from crmsms.sms.providers.simulator import SimulatorConnector
from crmsms.sms.simulator import SimulatorConfig, SimulatorServer, start_in_thread


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[SimulatorServer]:
    config = SimulatorConfig(log_path=tmp_path / "sim.jsonl", seed=1)
    server, thread, _port = start_in_thread(config)
    yield server
    server.stop()
    thread.join(timeout=5)


def make_connector(
    server: SimulatorServer, token: str = "", timeout: float = 5.0
) -> SimulatorConnector:
    auth = f"{token}@" if token else ""
    # The timeout is read when the connector is built.
    with override_settings(CRMSMS_PROVIDER_TIMEOUT=timeout):
        connector = connector_for(f"simulator://{auth}127.0.0.1:{server.port}")
    assert isinstance(connector, SimulatorConnector)
    return connector


def sms(reference: str, to: str = "+33612345678") -> OutgoingSms:
    return OutgoingSms(message_id=1, to=to, body="Bonjour é ✓", reference=reference)


def logged(server: SimulatorServer, reference: str) -> list[dict]:
    path = server.config.log_path
    if path is None or not path.exists():
        return []
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return [line for line in lines if line["reference"] == reference]


def test_accepted_is_logged_exactly_once(simulator: SimulatorServer) -> None:
    connector = make_connector(simulator)
    try:
        outcome = connector.send(sms("ref-ok"))
    finally:
        connector.close()
    assert outcome.kind == ACCEPTED
    assert outcome.provider_message_id.startswith("SIM")
    [line] = logged(simulator, "ref-ok")
    assert line["id"] == outcome.provider_message_id
    assert (line["to"], line["body"]) == ("+33612345678", "Bonjour é ✓")
    assert line["at"]
    listed = httpx.get(f"http://127.0.0.1:{simulator.port}/v1/messages").json()["messages"]
    assert [m["reference"] for m in listed] == ["ref-ok"]


def test_a_batch_is_sent_several_calls_at_a_time(simulator: SimulatorServer, settings) -> None:
    """With 100 ms per answer, a batch of 10 takes about 100 ms, not a second, and every
    outcome stays with its own message."""
    import time

    settings.CRMSMS_PROVIDER_CONCURRENCY = 10
    simulator.reconfigure({"latency_ms": 100})
    connector = make_connector(simulator)
    try:
        connector.send_batch([sms("warm-up")])
        started = time.perf_counter()
        outcomes = connector.send_batch([sms(f"ref-{n}") for n in range(10)])
        elapsed = time.perf_counter() - started
    finally:
        connector.close()
    assert elapsed < 0.8, f"10 calls of 100 ms took {elapsed:.2f}s: one after the other (1 s or more)"
    assert [o.kind for o in outcomes] == [ACCEPTED] * 10
    assert all(len(logged(simulator, f"ref-{n}")) == 1 for n in range(10))
    assert len({o.provider_message_id for o in outcomes}) == 10


def test_throttled_is_retry_later_and_not_logged(simulator: SimulatorServer) -> None:
    simulator.reconfigure({"throttle_rate": 1.0})
    connector = make_connector(simulator)
    try:
        outcome = connector.send(sms("ref-429"))
    finally:
        connector.close()
    assert outcome.kind == RETRY_LATER
    assert outcome.code == "throttled"
    assert outcome.retry_after == 1.0
    assert logged(simulator, "ref-429") == []


def test_server_error_is_ambiguous(simulator: SimulatorServer) -> None:
    simulator.reconfigure({"error_rate": 1.0})
    connector = make_connector(simulator)
    try:
        outcome = connector.send(sms("ref-500"))
    finally:
        connector.close()
    assert outcome.kind == AMBIGUOUS
    assert outcome.code == "provider_error_500"
    assert "after it received the message" in outcome.detail


def test_timeout_after_sending_is_ambiguous_and_was_taken(simulator: SimulatorServer) -> None:
    # The point of "ambiguous": the provider did take this message, we just never heard back.
    simulator.reconfigure({"timeout_rate": 1.0, "hang_seconds": 3.0})
    connector = make_connector(simulator, timeout=0.3)
    try:
        outcome = connector.send(sms("ref-hang"))
    finally:
        connector.close()
    assert outcome.kind == AMBIGUOUS
    assert outcome.code == "timeout"
    assert "after sending" in outcome.detail
    assert len(logged(simulator, "ref-hang")) == 1


def test_invalid_number_is_failed(simulator: SimulatorServer) -> None:
    connector = make_connector(simulator)
    try:
        outcome = connector.send(sms("ref-bad", to="0612345678"))
    finally:
        connector.close()
    assert outcome.kind == FAILED
    assert outcome.code == "invalid_number"
    assert "0612345678" in outcome.detail
    assert logged(simulator, "ref-bad") == []


def test_wrong_token_is_auth_failed(simulator: SimulatorServer) -> None:
    simulator.reconfigure({"token": "s3cret"})
    wrong = make_connector(simulator, token="nope")
    right = make_connector(simulator, token="s3cret")
    try:
        refused, ok = wrong.send(sms("ref-401")), right.send(sms("ref-auth-ok"))
    finally:
        wrong.close()
        right.close()
    assert refused.kind == FAILED
    assert refused.code == "auth_failed"
    assert "CRMSMS_SMS_URL" in refused.detail
    assert logged(simulator, "ref-401") == []
    assert ok.kind == ACCEPTED


def test_connection_refused_is_retry_later() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago, now nobody listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with override_settings(CRMSMS_PROVIDER_TIMEOUT=2.0):
        connector = connector_for(f"simulator://127.0.0.1:{port}")
    try:
        outcome = connector.send(sms("ref-refused"))
    finally:
        connector.close()
    assert outcome.kind == RETRY_LATER
    assert outcome.code == "connection_refused"


def test_admin_config_and_reset(simulator: SimulatorServer) -> None:
    base = f"http://127.0.0.1:{simulator.port}"
    assert httpx.get(f"{base}/health").json() == {"status": "ok"}
    answer = httpx.post(f"{base}/admin/config", json={"throttle_rate": 1.0})
    assert answer.status_code == 200 and answer.json()["throttle_rate"] == 1.0
    assert httpx.post(f"{base}/admin/config", json={"throttle_rate": 2}).status_code == 400
    unknown = httpx.post(f"{base}/admin/config", json={"nope": 1})
    assert unknown.json()["error"]["code"] == "unknown_field"
    httpx.post(f"{base}/admin/config", json={"throttle_rate": 0.0})
    message = {"to": "+15555550100", "body": "hi", "reference": "r"}
    sent = httpx.post(f"{base}/v1/messages", json=message)
    assert sent.status_code == 201 and sent.json()["status"] == "accepted"
    empty = httpx.post(f"{base}/v1/messages", json={**message, "body": "", "reference": "e"})
    assert empty.status_code == 400 and empty.json()["error"]["code"] == "empty_body"
    assert httpx.post(f"{base}/admin/reset").status_code == 200
    assert httpx.get(f"{base}/v1/messages").json() == {"messages": []}
    assert len(logged(simulator, "r")) == 1  # reset leaves the log alone


def test_command_prints_address_and_stops_on_sigterm(tmp_path: Path) -> None:
    src = str(Path(crmsms.__file__).resolve().parent.parent)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "crmsms.settings",
           "PYTHONPATH": os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))}
    log = tmp_path / "cmd.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "django", "simulator", "--port", "0", "--log", str(log)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        assert ready, "the simulator command printed nothing in 30s"
        line = proc.stdout.readline().strip()
        assert line.startswith("Simulator listening on http://127.0.0.1:"), line
        assert line.endswith(f"(log: {log})")
        url = line.split()[3]
        assert httpx.get(f"{url}/health").json() == {"status": "ok"}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
