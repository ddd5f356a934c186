"""Pause sending to a provider account whose calls fail in a burst, and resume by itself.

When at least MIN_CALLS (20) calls to an account within WINDOW seconds were answered, and at
least ERROR_SHARE of them failed on the provider's side (no answer, 5xx, connection refused,
throttled, or a refusal of our account such as bad credentials), the account is paused:
a `ProviderPause` row, which every worker obeys and every page shows. Messages for it wait
(their attempt not counted) instead of piling up as "unknown" or "failed".

When the pause ends, the workers send ONE message as a trial: if the provider takes it, the
pause is lifted; if not, the account is paused again, twice as long (30 s, 60 s, ... up to
10 minutes; the first pause is CRMSMS_PROVIDER_PAUSE_SECONDS, and 0 never pauses). The error counts are per worker process (each sees enough calls to judge);
the pause itself is shared through the database.
"""

import threading
import time
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError
from django.utils import timezone

from .models import ProviderPause
from .providers.base import ACCEPTED, AMBIGUOUS, FAILED, RETRY_LATER, Outcome

WINDOW = 30.0  # seconds of calls looked at
MIN_CALLS = 20  # fewer calls than this say nothing
ERROR_SHARE = 0.5
LONGEST_PAUSE = 600.0  # seconds; the first is CRMSMS_PROVIDER_PAUSE_SECONDS, doubled each time
STALE = timedelta(minutes=10)  # a pause over for this long with no trial is forgotten
CACHE_SECONDS = 1.0  # how long a worker trusts what it read of the pauses

_lock = threading.Lock()
_recent: dict[str, dict[int, list[int]]] = {}  # account -> {monotonic second: [calls, errors]}
_cache: dict[str, tuple[float, ProviderPause | None]] = {}


def is_provider_error(outcome: Outcome) -> bool:
    """A failure of the provider or of our account with it, not of one message: a refusal
    of the recipient (invalid number, unsubscribed) says nothing about the provider."""
    if outcome.kind in (AMBIGUOUS, RETRY_LATER):
        return True
    return outcome.kind == FAILED and outcome.retryable


def pause_of(account: str) -> ProviderPause | None:
    """The account's pause, if any (cached for a second: read before every chunk)."""
    now = time.monotonic()
    with _lock:
        cached = _cache.get(account)
    if cached and now - cached[0] < CACHE_SECONDS:
        return cached[1]
    pause = ProviderPause.objects.filter(account=account).first()
    with _lock:
        _cache[account] = (now, pause)
        if pause is not None:
            # The calls that led to a pause (maybe another worker's) say nothing of the
            # provider once it is over: counted again, they would pause it again at once.
            _recent.pop(account, None)
    return pause


def record(account: str, outcomes: list[Outcome], *, trial: bool) -> None:
    """Count a chunk's outcomes; pause the account if its errors spiked, lift the pause if
    the trial after one went through."""
    failed = [o for o in outcomes if is_provider_error(o)]
    second = int(time.monotonic())
    with _lock:
        # Per second: [calls, errors]; the seconds older than the window are dropped. (Not
        # one entry per call: at a thousand calls a second that would be slow to count.)
        recent = _recent.setdefault(account, {})
        counts = recent.setdefault(second, [0, 0])
        counts[0] += len(outcomes)
        counts[1] += len(failed)
        for old in [s for s in recent if s <= second - WINDOW]:
            del recent[old]
        calls = sum(c for c, _ in recent.values())
        errors = sum(e for _, e in recent.values())
    if trial:
        if failed:
            _pause(account, f"The trial message after the pause failed too: {_last_answer(failed)}")
        elif any(o.kind == ACCEPTED for o in outcomes):
            ProviderPause.objects.filter(account=account).delete()
            _forget(account)
        return
    if failed and settings.CRMSMS_PROVIDER_PAUSE_SECONDS and calls >= MIN_CALLS and errors >= ERROR_SHARE * calls:
        _pause(account, f"{errors} of the last {calls} calls failed within {WINDOW:.0f} s; "
                        f"last answer: {_last_answer(failed)}")


def _last_answer(failed: list[Outcome]) -> str:
    if not failed:
        return "none"
    outcome = failed[-1]
    return f"{outcome.code}: {outcome.detail}"[:500]


def _pause(account: str, reason: str) -> None:
    now = timezone.now()
    existing = ProviderPause.objects.filter(account=account).first()
    if existing and existing.until > now:
        return  # another worker paused it already
    times = existing.times + 1 if existing else 1
    seconds = min(settings.CRMSMS_PROVIDER_PAUSE_SECONDS * 2 ** (times - 1), LONGEST_PAUSE)
    try:
        ProviderPause.objects.update_or_create(
            account=account,
            defaults={"until": now + timedelta(seconds=seconds), "reason": reason, "opened_at": now, "times": times})
    except IntegrityError:
        pass  # another worker created it at the same moment: paused anyway
    _forget(account)


def forget_stale() -> int:
    """Forget pauses that ended long ago with no trial since (no message for that account
    came due): the page would say "trying again" for ever. A periodic job."""
    deleted, _ = ProviderPause.objects.filter(until__lt=timezone.now() - STALE).delete()
    return deleted


def _forget(account: str) -> None:
    with _lock:
        _recent.pop(account, None)
        _cache.pop(account, None)


def reset() -> None:
    """Forget this process's counts (tests)."""
    with _lock:
        _recent.clear()
        _cache.clear()
