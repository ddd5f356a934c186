"""The provider faults matrix: real `crmsms worker` processes send through the simulator
while it misbehaves, and each message ends as DESIGN §4 says, with no blind resend of an
ambiguous one.

| fault                                   | each message ends                                 |
|-----------------------------------------|---------------------------------------------------|
| 30% HTTP 500                            | `unknown` (the 500s, sent once) or `sent`          |
| timeouts after the body was sent        | `unknown` (taken by the provider, sent once)       |
| 429 storm, then calm                    | `to_send` again later, then `sent` once            |
| 429 storm that never ends               | `failed` after CRMSMS_MAX_ATTEMPTS calls           |
| connection refused, provider restarted  | `to_send` again later, then `sent` once            |
| slow answers (5 s, below the timeout)   | `sent`, the lease never lost                       |

The messages of the 429 storm and of the refused connections may also wait out a pause of
sending (sms/breaker.py): that counts no attempt and sends nothing twice either.

What the simulator saw is checked against the database: its log of accepted messages
(`sim.accepted()`) and its record of every request with its answer (`sim.requests`), so
"sent once" is the provider's word, not ours.
"""

import collections
import contextlib
import random
import time

import pytest
from django.utils import timezone

from crmsms.sms import dispatch, states
from crmsms.sms.models import MessageEvent, SmsMessage
from crmsms.sms.simulator import SimulatorConfig, start_in_thread
from tests.sms.test_worker_processes import make_contacts, queue_for, start_worker, stop, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.processes]

AFTER_SENT = {states.SENT, states.DELIVERED, states.UNDELIVERED}
# A burst of provider errors pauses sending to it (sms/breaker.py): the messages wait, one
# tries the provider when the pause ends, then the others follow. A 429 storm or a provider
# that is down does cause one; the workers here pause for 2 s, not 30, to keep the file short.
PAUSE_SECONDS = "2"
SETTLE = 90


@contextlib.contextmanager
def running_workers(tmp_path, sim, count=1, **env):
    """`count` real `crmsms worker` processes, each up (its banner printed) before the test
    queues anything, so that they all compete for the messages; stopped (SIGTERM) after."""
    env = {"CRMSMS_PROVIDER_PAUSE_SECONDS": PAUSE_SECONDS, **env}
    workers = [start_worker(tmp_path, sim.url, f"w{i}", **env) for i in range(count)]
    try:
        for i, worker in enumerate(workers):
            log = tmp_path / f"w{i}.log"
            wait_for(lambda: worker.poll() is not None or "crmsms worker" in log.read_text(), 30,
                     f"worker {i} to start")
            assert worker.poll() is None, log.read_text()
        yield workers
    finally:
        stop(*workers)


def settled() -> bool:
    return not SmsMessage.objects.filter(status__in=[states.TO_SEND, states.SENDING]).exists()


def reference(pk: int) -> str:
    return f"crmsms-{pk}"


def by_status() -> dict[str, set[str]]:
    result = collections.defaultdict(set)
    for pk, status in SmsMessage.objects.values_list("pk", "status"):
        result[status].add(reference(pk))
    return dict(result)


def answers(*servers) -> dict[str, list[str]]:
    """What the simulator answered each request, per message reference, in order."""
    result = collections.defaultdict(list)
    for server in servers:
        with server.lock:
            for request in server.requests:
                result[request["reference"]].append(request["answer"])
    return dict(result)


def accepted_references(sim) -> list[str]:
    return [entry["reference"] for entry in sim.accepted()]


def events(kind: str) -> list[MessageEvent]:
    return list(MessageEvent.objects.filter(kind=kind))


def expected_draws_below(seed: int, rate: float, n: int) -> int:
    """How many of the simulator's first `n` draws after `seed` fall in a band of `rate`
    (each request to /v1/messages draws once)."""
    rng = random.Random(seed)
    return sum(rng.random() < rate for _ in range(n))


def test_server_errors_become_unknown_and_are_never_resent(tmp_path, sim):
    n, seed = 150, 30
    sim.reconfigure({"error_rate": 0.3, "seed": seed})
    contacts = make_contacts(n)
    with running_workers(tmp_path, sim, 2, CRMSMS_BATCH_SIZE="10"):
        messages = queue_for(contacts)
        wait_for(settled, SETTLE, "every message to leave the queue")
    seen = answers(sim)
    assert set(seen) == {reference(m.pk) for m in messages}
    assert all(len(a) == 1 for a in seen.values()), "a message was sent to the provider twice"
    errors = {ref for ref, a in seen.items() if a == ["error"]}
    assert len(errors) == expected_draws_below(seed, 0.3, n)  # about 30%, exactly the simulator's draws
    accepted = accepted_references(sim)
    assert len(accepted) == len(set(accepted)) == n - len(errors)
    final = by_status()
    assert set(final) == {states.SENT, states.UNKNOWN}, final.keys()
    assert final[states.UNKNOWN] == errors  # every 500 is ambiguous: unknown, not resent
    assert final[states.SENT] == set(accepted)  # everything the provider took is sent
    assert len(final[states.SENT]) + len(final[states.UNKNOWN]) == n
    unknown = SmsMessage.objects.filter(status=states.UNKNOWN)
    assert set(unknown.values_list("error_code", flat=True)) == {"provider_error_500"}
    assert set(SmsMessage.objects.values_list("attempts", flat=True)) == {1}
    assert not events("retry")
    assert collections.Counter(e.message_id for e in events("unknown")) == {m.pk: 1 for m in unknown}


def test_timeouts_after_sending_become_unknown_and_are_never_resent(tmp_path, sim):
    n, seed = 100, 31
    # The simulator takes and logs the message, then says nothing for longer than we wait.
    sim.reconfigure({"timeout_rate": 0.2, "hang_seconds": 5.0, "seed": seed})
    contacts = make_contacts(n)
    # CRMSMS_PROVIDER_TIMEOUT is the HTTP connectors' read timeout (providers/http.py).
    with running_workers(tmp_path, sim, 2, CRMSMS_BATCH_SIZE="10", CRMSMS_PROVIDER_TIMEOUT="2"):
        messages = queue_for(contacts)
        wait_for(settled, SETTLE, "every message to leave the queue")
    seen = answers(sim)
    assert set(seen) == {reference(m.pk) for m in messages}
    assert all(len(a) == 1 for a in seen.values()), "a message was sent to the provider twice"
    hung = {ref for ref, a in seen.items() if a == ["hung"]}
    assert len(hung) == expected_draws_below(seed, 0.2, n)
    accepted = accepted_references(sim)
    assert len(accepted) == len(set(accepted)) == n  # the provider took every one, once
    final = by_status()
    assert set(final) == {states.SENT, states.UNKNOWN}, final.keys()
    assert final[states.UNKNOWN] == hung
    assert final[states.SENT] == set(accepted) - hung
    timed_out = SmsMessage.objects.filter(status=states.UNKNOWN)
    assert set(timed_out.values_list("error_code", flat=True)) == {"timeout"}
    assert all("not resent automatically" in m.error_message for m in timed_out)
    assert set(SmsMessage.objects.values_list("attempts", flat=True)) == {1}
    assert not events("retry")


def test_a_429_storm_makes_messages_wait_then_all_are_sent_once(tmp_path, sim):
    n, max_attempts = 100, 6
    sim.reconfigure({"throttle_rate": 1.0})
    contacts = make_contacts(n)
    with running_workers(tmp_path, sim, 1, CRMSMS_BATCH_SIZE="10", CRMSMS_RETRY_BASE_SECONDS="1",
                         CRMSMS_MAX_ATTEMPTS=str(max_attempts)):
        messages = queue_for(contacts)
        # During the storm: throttled messages are back in the queue, due later, none sent.
        wait_for(lambda: SmsMessage.objects.filter(status=states.TO_SEND, attempts__gte=1,
                                                   due_at__gt=timezone.now()).count() >= 10,
                 30, "throttled messages to wait for a later attempt")
        storm_began = time.monotonic()
        assert not SmsMessage.objects.filter(status__in=AFTER_SENT).exists()
        wait_for(lambda: time.monotonic() - storm_began > 2.5, 10, "the storm to last a little")
        sim.reconfigure({"throttle_rate": 0.0})
        wait_for(settled, SETTLE, "every message to leave the queue")
    final = by_status()
    assert set(final) == {states.SENT}, {status: len(refs) for status, refs in final.items()}
    accepted = accepted_references(sim)
    assert len(accepted) == len(set(accepted)) == n
    seen = answers(sim)
    attempts = dict(SmsMessage.objects.values_list("pk", "attempts"))
    retries = collections.Counter(e.message_id for e in events("retry"))
    for message in messages:
        calls = seen[reference(message.pk)]
        # Every call but the last was throttled, and each one is an attempt we counted.
        assert calls[-1] == "accepted" and set(calls[:-1]) <= {"throttled"}, calls
        assert len(calls) == attempts[message.pk] <= max_attempts
        assert retries[message.pk] == len(calls) - 1
    assert sum(retries.values()) >= 10  # the storm did send messages back
    for event in events("retry"):
        assert event.data["code"] == "throttled" and "Next attempt at" in event.detail


def test_a_429_storm_that_never_ends_gives_up_after_max_attempts(tmp_path, sim):
    # Two messages, three calls each: too few calls for any pause of sending to kick in,
    # so this is the retry limit alone.
    max_attempts = 3
    sim.reconfigure({"throttle_rate": 1.0})
    contacts = make_contacts(2)
    with running_workers(tmp_path, sim, 1, CRMSMS_RETRY_BASE_SECONDS="1", CRMSMS_MAX_ATTEMPTS=str(max_attempts)):
        messages = queue_for(contacts)
        wait_for(settled, 60, "both messages to leave the queue")
    assert answers(sim) == {reference(m.pk): ["throttled"] * max_attempts for m in messages}
    assert sim.accepted() == []
    for message in SmsMessage.objects.all():
        assert (message.status, message.attempts, message.error_code) == (states.FAILED, max_attempts, "throttled")
        assert message.retryable  # the provider provably never took it: « Retry failed » may queue it again
        assert message.error_message.startswith(f"Gave up after {max_attempts} attempts.")
    assert len(events("retry")) == 2 * (max_attempts - 1) and len(events("failed")) == 2


def test_connection_refused_waits_for_the_provider_to_come_back(tmp_path, sim):
    before, during, max_attempts = 20, 80, 8
    port = sim.port
    contacts = make_contacts(before + during)
    restarted = None
    try:
        with running_workers(tmp_path, sim, 1, CRMSMS_BATCH_SIZE="10", CRMSMS_RETRY_BASE_SECONDS="1",
                             CRMSMS_MAX_ATTEMPTS=str(max_attempts)):
            # Sent while the provider is up: the worker keeps connections to it alive.
            queue_for(contacts[:before])
            wait_for(lambda: SmsMessage.objects.filter(status=states.SENT).count() == before, 30, "the first sends")
            sim.stop()  # the provider goes down: its port refuses, its open connections close
            later = SmsMessage.objects.filter(pk__in=[m.pk for m in queue_for(contacts[before:], body="later")])
            wait_for(lambda: later.filter(status=states.TO_SEND, attempts__gte=1).count() >= 10, 30,
                     "refused messages to wait for a later attempt")
            time.sleep(2.0)  # down a little longer: some are refused more than once
            assert not later.filter(status__in=AFTER_SENT).exists()
            # Back on the same port, writing to the same log.
            restarted, _, _ = start_in_thread(SimulatorConfig(log_path=tmp_path / "simulator.jsonl"), port=port)
            wait_for(settled, SETTLE, "every message to leave the queue")
    finally:
        if restarted is not None:
            restarted.stop()
    final = by_status()
    assert set(final) == {states.SENT}, {status: len(refs) for status, refs in final.items()}
    accepted = accepted_references(sim)  # the log of both lives of the simulator
    assert len(accepted) == len(set(accepted)) == before + during
    assert restarted is not None and all(a == ["accepted"] for a in answers(restarted).values())
    retried = events("retry")
    assert len(retried) >= 10 and {e.data["code"] for e in retried} == {"connection_refused"}
    attempts = dict(SmsMessage.objects.values_list("pk", "attempts"))
    retries = collections.Counter(e.message_id for e in retried)
    for message in later:
        assert attempts[message.pk] == retries[message.pk] + 1 <= max_attempts  # each refusal, then the send
    # The connections the provider closed while idle were not mistaken for sends cut short.
    assert not events("unknown")


def test_slow_answers_are_sent_and_the_lease_is_kept(tmp_path, sim):
    """Each answer takes 5 s, within the 10 s timeout (CRMSMS_PROVIDER_TIMEOUT). A batch (2
    chunks of 10) takes 10 s, longer than the 8 s lease (CRMSMS_LEASE_SECONDS) but each chunk
    less: only a lease renewed for each chunk keeps the batch from being taken for dead (its
    messages would become "unknown")."""
    n, lease = 80, 8  # 4 batches of 20: one per sending thread, none waits in huey's queue
    sim.reconfigure({"latency_ms": 5000})
    contacts = make_contacts(n)
    with running_workers(tmp_path, sim, 1, CRMSMS_PROVIDER_TIMEOUT="10", CRMSMS_LEASE_SECONDS=str(lease),
                         CRMSMS_BATCH_SIZE="20", CRMSMS_CALL_CHUNK="10"):
        messages = queue_for(contacts)

        def all_final():
            dispatch.expire_leases()  # what every other worker does each second
            return settled()
        wait_for(all_final, SETTLE, "every message to leave the queue")
    final = by_status()
    assert set(final) == {states.SENT}, {status: len(refs) for status, refs in final.items()}
    # Some batches really outlived the lease: claimed, then sent more than `lease` seconds later.
    claimed = {e.message_id: e.at for e in events("attempt")}
    assert max((e.at - claimed[e.message_id]).total_seconds() for e in events("sent")) > lease
    accepted = accepted_references(sim)
    assert len(accepted) == len(set(accepted)) == n
    assert answers(sim) == {reference(m.pk): ["accepted"] for m in messages}
    assert set(SmsMessage.objects.values_list("attempts", flat=True)) == {1}
    taken_for_dead = MessageEvent.objects.filter(kind__in=["unknown", "requeued", "retry"])
    assert not taken_for_dead.exists(), [(e.kind, e.detail) for e in taken_for_dead[:3]]
