"""Each provider account's rate limit, in segments per second, shared by every worker
(DESIGN §4: a 3-part SMS costs the account 3).

Set it with the `rate` option of the provider's URL, e.g.
``twilio://SID:TOKEN@api.twilio.com?from=+33...&rate=30``. With Redis (CRMSMS_REDIS_URL, or
HUEY_URL when it is a redis:// URL) one count per account serves all the workers of all the
machines; without Redis, each worker process counts for itself (right for the default
set-up: one worker).

The count is a virtual clock (the "generic cell rate algorithm"): `next_free` is the moment
the account may take its next segment. A chunk of N segments takes its turn at
max(next_free, now) and pushes next_free on by N / rate, so the segments sent over any
period never exceed rate × period by more than one chunk. Booking is one atomic step (a
Lua script in Redis), so two workers never get the same turn.
"""

import logging
import threading
import time
from functools import lru_cache

from django.conf import settings

log = logging.getLogger(__name__)

# In Redis: book `cost` seconds on the clock at KEYS[1] unless the turn is further away than
# ARGV[2] seconds. Returns {booked (1/0), seconds to wait as a string} (Redis would turn a
# Lua float into an integer).
_BOOK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local cost, max_wait = tonumber(ARGV[1]), tonumber(ARGV[2])
local next_free = tonumber(redis.call('GET', KEYS[1]) or '0')
if next_free < now then next_free = now end
local wait = next_free - now
if wait > max_wait then return {0, tostring(wait)} end
redis.call('SET', KEYS[1], tostring(next_free + cost), 'PX', math.ceil((next_free + cost - now) * 1000) + 1000)
return {1, tostring(wait)}
"""

_local_clocks: dict[str, float] = {}
_local_lock = threading.Lock()


def book(account: str, rate: float, segments: int, max_wait: float) -> tuple[bool, float]:
    """Book `segments` on `account`'s clock at `rate` segments/s. Returns (booked, seconds
    until their turn): booked, the caller waits that long and sends them; not booked (the
    turn is more than `max_wait` seconds away), nothing was booked and the caller sends them
    later, about that much later."""
    cost = max(segments, 1) / rate
    script = _redis_script()
    if script is not None:
        try:
            booked, wait = script(keys=[f"crmsms:rate:{account}"], args=[cost, max_wait])
            return bool(int(booked)), float(wait)
        except Exception as error:  # noqa: BLE001  Redis down: each worker counts for itself meanwhile
            log.warning("rate limit of %s counted by this worker alone: Redis unavailable (%s)", account, error)
    with _local_lock:
        now = time.monotonic()
        next_free = max(_local_clocks.get(account, 0.0), now)
        wait = next_free - now
        if wait > max_wait:
            return False, wait
        _local_clocks[account] = next_free + cost
        return True, wait


def redis_url() -> str:
    """Where the shared counts live (CRMSMS_REDIS_URL, which defaults to HUEY_URL), or ''."""
    url = settings.CRMSMS_REDIS_URL
    return url if url.startswith(("redis://", "rediss://", "unix://")) else ""


@lru_cache(maxsize=1)
def _redis_script():
    url = redis_url()
    if not url:
        return None
    import redis  # only needed with Redis (the `redis` extra)

    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    return client.register_script(_BOOK)


def forget() -> None:
    """Drop this process's counts and Redis connection (tests; settings changed)."""
    _redis_script.cache_clear()
    with _local_lock:
        _local_clocks.clear()
