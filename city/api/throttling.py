"""Rate limits as fixed one-minute windows of counters in the shared cache.

DRF's SimpleRateThrottle keeps every request's timestamp in one cached list, which at 6,000
requests a minute means reading and writing a list of 6,000 floats per request; a counter per
window is one atomic increment.
"""

from __future__ import annotations

import threading
import time

import redis
from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from rest_framework.throttling import BaseThrottle

WINDOW = 60


def _bucket(key: str) -> str:
    return f"{key}:{int(time.time() // WINDOW)}"


def _counted(client, bucket: str, *reads: str) -> list:
    """In one round trip: the raw values of the cache's keys ``reads``, then ``bucket``'s count
    after one more (INCR, and the expiry set by the window's first event only)."""
    pipeline = client.pipeline(transaction=False)
    for read in reads:
        pipeline.get(cache.make_and_validate_key(read))
    name = cache.make_and_validate_key(bucket)
    return pipeline.incr(name).expire(name, WINDOW * 2, nx=True).execute()[:-1]


def window_count(key: str) -> int:
    """Count one more event under ``key`` in the current minute and return the count."""
    bucket = _bucket(key)
    client = redis_client()
    if client is not None:
        (count,) = _counted(client, bucket)
        return count
    if cache.add(bucket, 1, timeout=WINDOW * 2):
        return 1
    try:
        return cache.incr(bucket)
    except ValueError:  # expired between add and incr
        cache.add(bucket, 1, timeout=WINDOW * 2)
        return 1


def window_count_and_get(key: str, other: str) -> tuple[int, bytes | None] | None:
    """``window_count(key)`` and the raw value of the cache's key ``other``, in the same one
    round trip; None where the cache is not Redis (nothing counted then)."""
    client = redis_client()
    if client is None:
        return None
    value, count = _counted(client, _bucket(key), other)
    return count, value


def rate_key(principal_key: str) -> str:
    """The rate limit's counter for a principal (``Principal.key``)."""
    return f"rate:{principal_key}"


# Where authentication leaves the count it took for the rate limit in its own round trip.
COUNTED = "_city_rate_counted"


def redis_client():
    """A redis-py client on the Redis of Django's cache, or None with another cache (which counts
    with add and incr, two calls). One per process: Django's cache handler is per thread, and
    under ASGI every request has a thread of its own, so the cache's own client would open a
    connection per request. The counter is stored as Django's RedisCache stores an int (plain,
    so INCR works and ``cache.get`` reads it back)."""
    global _client
    backend = caches["default"]
    if not isinstance(backend, RedisCache):
        return None
    if _client is None:
        with _client_lock:
            if _client is None:
                _client = redis.Redis.from_url(backend._servers[0])
    return _client


_client = None
_client_lock = threading.Lock()


def window_peek(key: str) -> int:
    """How many events ``key`` counted in the current minute, without counting one."""
    return cache.get(f"{key}:{int(time.time() // WINDOW)}") or 0


def seconds_left_in_window() -> int:
    return WINDOW - int(time.time()) % WINDOW


class PrincipalRateThrottle(BaseThrottle):
    """RATE_LIMIT_PER_MINUTE requests per owner or agent."""

    def allow_request(self, request, view):
        principal = request.auth
        if principal is None:
            return True
        count = getattr(request, COUNTED, None)
        if count is None:
            count = window_count(rate_key(principal.key))
        return count <= settings.RATE_LIMIT_PER_MINUTE

    def wait(self):
        return seconds_left_in_window()
