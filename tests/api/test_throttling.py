"""The rate limit's counters: one per principal and minute, in whichever cache is configured.
On Redis (production's cache) a count is one round trip: INCR, and an expiry set once."""

from __future__ import annotations

from city.api import throttling


def test_counts_per_minute_in_the_local_cache(clock):
    counts = [throttling.window_count("rate:k") for _ in range(3)]
    clock.now += 60

    assert counts == [1, 2, 3]
    assert throttling.window_count("rate:k") == 1  # a new minute starts again


def test_counts_on_redis_in_one_round_trip_with_an_expiry(redis_cache, redis_pipelines, clock):
    client = redis_cache._cache.get_client("x", write=True)

    counts = [throttling.window_count("rate:k") for _ in range(3)]
    name = redis_cache.make_and_validate_key(f"rate:k:{int(clock.now // 60)}")

    assert counts == [1, 2, 3]
    assert redis_pipelines == [2, 2, 2]  # INCR + EXPIRE, one pipeline each
    assert throttling.window_peek("rate:k") == 3  # read back through Django's cache
    assert 60 < client.ttl(name) <= 120


def test_the_limit_refuses_the_request_past_it_on_redis(redis_cache, clock, settings, alice):
    settings.RATE_LIMIT_PER_MINUTE = 2
    responses = [alice.api.get("/api/v1/credits").status_code for _ in range(3)]

    assert responses == [200, 200, 429]
