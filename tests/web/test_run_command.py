"""`make run`'s promise, through the real command: `crmsms run --simulator` starts the web
UI, the worker and the provider simulator; an SMS created through the API leaves, and the
simulator's delivery report, signed and sent back over HTTP, makes it Delivered. Ctrl-C
stops everything."""

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

pytestmark = pytest.mark.processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_run_with_the_simulator_reaches_delivered(tmp_path):
    env = {**os.environ, "CRMSMS_DATA_DIR": str(tmp_path), "CRMSMS_LOG_LEVEL": "WARNING"}
    for name in ("DATABASE_URL", "HUEY_URL", "CRMSMS_SMS_URL", "CRMSMS_PUBLIC_URL"):
        env.pop(name, None)
    cli = [sys.executable, "-m", "crmsms"]
    subprocess.run([*cli, "migrate", "--verbosity", "0"], env=env, check=True)
    subprocess.run([*cli, "load-demo"], env=env, check=True, capture_output=True)
    token = subprocess.run([*cli, "api-token", "demo"], env=env, check=True, capture_output=True,
                           text=True).stdout.strip().splitlines()[-1]
    port, sim_port = free_port(), free_port()
    run = subprocess.Popen([*cli, "run", "--port", str(port), "--simulator", "--simulator-port", str(sim_port)],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           start_new_session=True)
    try:
        api = httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v1", headers={"Authorization": f"Bearer {token}"})
        deadline = time.monotonic() + 30
        while True:
            try:
                contacts = api.get("/contacts").json()["items"]
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the web UI did not start"
                time.sleep(0.2)
        contact = next(c for c in contacts if c["sms_opt_in"] and c["phone_mobile"])
        created = api.post("/messages", json={"contact_id": contact["id"], "body": "Hello from make run",
                                              "status": "to_send"})
        assert created.status_code == 201, created.text
        message_id = created.json()["id"]
        seen = []
        while time.monotonic() < deadline + 30:
            status = api.get(f"/messages/{message_id}").json()["status"]
            if not seen or seen[-1] != status:
                seen.append(status)
            if status == "delivered":
                break
            time.sleep(0.2)
        assert seen[-1] == "delivered", seen
    finally:
        os.killpg(run.pid, signal.SIGINT)  # Ctrl-C in the terminal
        output = run.communicate(timeout=60)[0]
    assert "messages reach Delivered" in output and "crmsms stopped." in output
    assert f"simulator://TOKEN@127.0.0.1:{sim_port}" in output  # its secret is not printed


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as listing:
        return [int(child) for child in listing.read().split()]


def test_serve_with_two_processes_shares_the_port_replaces_a_killed_one_and_stops_on_sigterm(tmp_path):
    env = {**os.environ, "CRMSMS_DATA_DIR": str(tmp_path), "CRMSMS_LOG_LEVEL": "WARNING",
           "CRMSMS_SERVE_PROCESSES": "2"}  # the variable `crmsms run` passes on
    env.pop("DATABASE_URL", None)
    cli = [sys.executable, "-m", "crmsms"]
    subprocess.run([*cli, "migrate", "--verbosity", "0"], env=env, check=True)
    port = free_port()
    serve = subprocess.Popen([*cli, "serve", "--port", str(port)], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    try:
        def answers() -> int:
            deadline = time.monotonic() + 30
            while True:
                try:
                    return httpx.get(f"http://127.0.0.1:{port}/login/").status_code
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "the server did not answer"
                    time.sleep(0.2)

        assert answers() == 200
        deadline = time.monotonic() + 30
        while len(_children(serve.pid)) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        first, second = _children(serve.pid)
        os.kill(first, signal.SIGKILL)
        # The other process goes on answering on the same port meanwhile.
        assert all(answers() == 200 for _ in range(20))
        while first in _children(serve.pid) or len(_children(serve.pid)) < 2:
            assert time.monotonic() < deadline, "the killed process was not replaced"
            time.sleep(0.1)
        assert second in _children(serve.pid)
        assert answers() == 200
    finally:
        serve.send_signal(signal.SIGTERM)
        output = serve.communicate(timeout=30)[0]
    assert serve.returncode == 0, output
    assert "crmsms serve: 2 processes" in output and "ended (exit -9); starting another" in output


def test_a_repeated_warning_is_logged_at_most_every_ten_seconds(monkeypatch):
    """Waitress's "Task queue depth is N", once per waiting request under load."""
    import logging

    from crmsms.web import logfilters

    clock = [1000.0]
    monkeypatch.setattr(logfilters.time, "monotonic", lambda: clock[0])
    limit = logfilters.AtMostEvery(seconds=10)

    def passes(depth: int) -> logging.LogRecord | None:
        record = logging.LogRecord("waitress.queue", logging.WARNING, "", 0, "Task queue depth is %d", (depth,), None)
        return record if limit.filter(record) else None

    assert passes(1).getMessage() == "Task queue depth is 1"
    clock[0] += 3
    assert passes(2) is None and passes(3) is None
    clock[0] += 8
    assert passes(4).getMessage() == "Task queue depth is 4 (and 2 more such lines in the last 11 s)"
    clock[0] += 1
    assert passes(5) is None
