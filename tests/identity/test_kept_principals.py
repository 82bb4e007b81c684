"""Each process keeps the principals of live secrets, so that a request needs no query to know
its caller; one is used only at the identity epoch it was kept at, read in the round trip the
rate limit makes anyway. These run on Redis (production's cache), a key prefix of each test's
own; without Redis nothing is kept."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from city.identity import authentication, epoch
from city.identity import services as identity
from city.identity.ids import secret_hash
from city.identity.models import Agent, ApiSecret
from tests.factories import ApiClient, error_of


def secret_lookups(queries) -> int:
    return sum('FROM "identity_apisecret"' in q["sql"] for q in queries)


def credits_read(secret: str):
    """GET /api/v1/credits, and how many times it looked the secret up in the database."""
    with CaptureQueriesContext(connection) as captured:
        response = ApiClient(secret).get("/api/v1/credits")
    return response, secret_lookups(captured.captured_queries)


def test_a_second_request_with_a_secret_needs_no_lookup(redis_cache, alice, rex):
    for secret in (alice.token, rex.key):
        first, looked_up_first = credits_read(secret)
        second, looked_up_second = credits_read(secret)

        assert (first.status_code, second.status_code) == (200, 200)
        assert (looked_up_first, looked_up_second) == (1, 0)
        assert second.json() == first.json()


def test_a_kept_principal_costs_one_redis_round_trip_for_the_epoch_and_the_rate_limit(
    redis_cache, alice, redis_pipelines
):
    credits_read(alice.token)
    redis_pipelines.clear()

    response, looked_up = credits_read(alice.token)

    assert (response.status_code, looked_up) == (200, 0)
    assert redis_pipelines == [3]  # GET the epoch, INCR the minute's count, EXPIRE it


@pytest.mark.parametrize("who", ["alice", "rex"])
def test_a_revoked_secret_is_refused_on_its_next_request(redis_cache, who, request):
    principal = request.getfixturevalue(who)
    secret = getattr(principal, "key", None) or principal.token
    assert credits_read(secret)[0].status_code == 200

    # As another process would: this one's kept principals are not touched, only the epoch.
    identity.secret_revoke(record=ApiSecret.objects.get(secret_hash=secret_hash(secret)))
    response, looked_up = credits_read(secret)

    assert response.status_code == 401
    assert error_of(response)["code"] == "invalid_secret"
    assert looked_up == 1


def test_a_suspended_agent_is_refused_on_its_next_request(redis_cache, rex):
    assert credits_read(rex.key)[0].status_code == 200

    identity.agents_set_status(agents=Agent.objects.filter(pk=rex.id), status="suspended")
    response, _ = credits_read(rex.key)

    assert response.status_code == 403
    assert error_of(response)["code"] == "agent_suspended"


def test_any_save_of_an_agent_moves_the_epoch_but_a_new_secret_does_not(redis_cache, rex):
    credits_read(rex.key)
    identity.agent_key_issue(agent=rex.agent)  # a creation: nothing kept can name it
    assert credits_read(rex.key)[1] == 0

    agent = Agent.objects.get(pk=rex.id)
    agent.name = "rex the second"
    agent.save()  # as the admin's change form does

    assert credits_read(rex.key)[1] == 1


def test_a_change_committed_while_the_secret_is_read_leaves_what_was_read_stale(
    redis_cache, alice, monkeypatch
):
    """The epoch is read before the secret: a revocation that commits after the read (here,
    right after it) moved the epoch past the one the principal is kept at."""
    lookup = authentication._LIVE_SECRET.first
    revoked = []

    def read_then_revoked(**params):
        record = lookup(**params)
        if not revoked:
            revoked.append(identity.secret_revoke(record=record))
        return record

    monkeypatch.setattr(authentication._LIVE_SECRET, "first", read_then_revoked)

    assert credits_read(alice.token)[0].status_code == 200  # it had read the secret live
    response, looked_up = credits_read(alice.token)

    assert response.status_code == 401
    assert looked_up == 1


def test_a_lost_epoch_starts_again_at_a_number_nothing_was_kept_at(redis_cache, alice):
    credits_read(alice.token)
    kept_at = epoch.now()
    redis_cache.delete(epoch.KEY)  # an eviction, a flush, a restart

    response, looked_up = credits_read(alice.token)

    assert (response.status_code, looked_up) == (200, 1)
    assert epoch.now() not in (None, kept_at)
    assert credits_read(alice.token)[1] == 0  # kept again, at the new epoch


def test_a_kept_secret_still_records_its_last_use_once_a_minute(redis_cache, alice):
    credits_read(alice.token)
    record = ApiSecret.objects.get(secret_hash=secret_hash(alice.token))
    later = timezone.now() + timedelta(minutes=2)

    with time_machine.travel(later, tick=False):
        response, looked_up = credits_read(alice.token)

    record.refresh_from_db()
    assert (response.status_code, looked_up) == (200, 0)
    assert record.last_used_at == later


def test_without_redis_nothing_is_kept(alice):
    first, looked_up_first = credits_read(alice.token)
    second, looked_up_second = credits_read(alice.token)

    assert (first.status_code, second.status_code) == (200, 200)
    assert (looked_up_first, looked_up_second) == (1, 1)
    assert epoch.now() is None
