"""Owner tokens and agent keys: random, stored only as hashes, revocable, several per principal."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from city.identity import services as identity
from city.identity.models import ApiSecret
from tests.factories import ApiClient, error_of

URLSAFE = re.compile(r"[A-Za-z0-9_-]+")


def record_of(secret: str) -> ApiSecret:
    return ApiSecret.objects.get(secret_hash=hashlib.sha256(secret.encode()).hexdigest())


def test_it_stores_secrets_only_as_sha256_hashes(alice, rex):
    for secret in (alice.token, rex.key):
        assert record_of(secret).secret_hash == hashlib.sha256(secret.encode()).hexdigest()

    for row in ApiSecret.objects.values():
        for value in row.values():
            assert alice.token not in str(value), row
            assert rex.key not in str(value), row


def test_it_prefixes_owner_tokens_own_and_agent_keys_agk(alice, rex):
    assert alice.token.startswith("own_")
    assert rex.key.startswith("agk_")
    assert (record_of(alice.token).kind, record_of(alice.token).owner) == ("owner", alice.owner)
    assert (record_of(rex.key).kind, record_of(rex.key).agent) == ("agent", rex.agent)


def test_it_issues_secrets_with_at_least_32_random_bytes(alice, rex):
    tokens = [identity.owner_token_issue(owner=alice.owner).secret for _ in range(20)]
    keys = [identity.agent_key_issue(agent=rex.agent).secret for _ in range(20)]

    for secret in [*tokens, *keys]:
        body = secret[4:]
        assert URLSAFE.fullmatch(body), secret
        # URL-safe base64 carries 6 bits a character: 43 characters hold 256 bits.
        assert len(body) * 6 >= 256, secret
    assert len(set(tokens + keys)) == 40


@pytest.mark.parametrize("who", ["alice", "rex"])
def test_it_refuses_a_revoked_secret(who, request):
    principal = request.getfixturevalue(who)
    secret = getattr(principal, "key", None) or principal.token
    spare = (
        identity.agent_key_issue(agent=principal.agent)
        if who == "rex"
        else identity.owner_token_issue(owner=principal.owner)
    ).secret
    assert ApiClient(secret).get("/api/v1/credits").status_code == 200

    identity.secret_revoke(record=record_of(secret))
    response = ApiClient(secret).get("/api/v1/credits")

    assert response.status_code == 401
    error = error_of(response)
    assert (error["type"], error["code"]) == ("authentication_error", "invalid_secret")
    assert ApiClient(spare).get("/api/v1/credits").status_code == 200


def test_it_keeps_the_first_revocation_time(alice):
    record = identity.secret_revoke(record=record_of(alice.token))
    revoked_at = record.revoked_at

    again = identity.secret_revoke(record=record)

    assert revoked_at is not None
    assert again.revoked_at == revoked_at


def test_it_accepts_every_live_token_of_an_owner(alice, submitted):
    rotated = [identity.owner_token_issue(owner=alice.owner, name=f"ci-{n}").secret for n in (1, 2)]
    identity.secret_revoke(record=record_of(alice.token))

    for token in rotated:
        listed = ApiClient(token).get("/api/v1/tasks")
        assert listed.status_code == 200
        assert [t["id"] for t in listed.json()["data"]] == [submitted["id"]]
    assert alice.owner.tokens.filter(revoked_at__isnull=True).count() == 2


def test_it_accepts_every_live_key_of_an_agent_as_that_agent(rex, submitted):
    tid = submitted["id"]
    rotated = ApiClient(identity.agent_key_issue(agent=rex.agent, name="rotated").secret)

    listed = rotated.get("/api/v1/agent/tasks/submitted")
    provisioned = rotated.post(f"/api/v1/tasks/{tid}/sandbox")
    events = rex.api.get(f"/api/v1/tasks/{tid}/events").json()

    assert [t["id"] for t in listed.json()] == [tid]
    assert provisioned.status_code == 201
    assert events[-1]["type"] == "sandbox_provision"
    assert events[-1]["actor"] == f"agent:{rex.id}"


@pytest.mark.parametrize(
    "forge",
    [
        lambda s: s[:-1] + ("A" if s[-1] != "A" else "B"),
        lambda s: s + "x",
        lambda s: s[:-1],
        lambda s: s.upper(),
        lambda s: record_of(s).hint,
        lambda s: hashlib.sha256(s.encode()).hexdigest(),
        lambda s: "own_" + "A" * 43,
    ],
    ids=["one_char_changed", "suffixed", "truncated", "upper_case", "hint", "hash", "made_up"],
)
def test_it_refuses_a_secret_that_is_not_exactly_a_live_one(forge, alice):
    response = ApiClient(forge(alice.token)).get("/api/v1/credits")

    assert response.status_code == 401
    error = error_of(response)
    assert (error["type"], error["code"]) == ("authentication_error", "invalid_secret")


def test_it_accepts_the_bearer_scheme_in_any_case(alice):
    response = ApiClient(None).get(
        "/api/v1/credits", headers={"Authorization": f"bearer {alice.token}"}
    )

    assert response.status_code == 200


def test_it_records_when_a_secret_was_last_used(alice):
    spare = identity.owner_token_issue(owner=alice.owner)
    assert record_of(alice.token).last_used_at is None
    before = timezone.now()

    alice.api.get("/api/v1/credits")

    used = record_of(alice.token).last_used_at
    assert used is not None and before <= used <= timezone.now()
    assert record_of(spare.secret).last_used_at is None


def test_it_refreshes_last_used_at_at_most_once_a_minute(alice):
    record = record_of(alice.token)
    recent = timezone.now() - timedelta(seconds=30)
    ApiSecret.objects.filter(pk=record.pk).update(last_used_at=recent)
    alice.api.get("/api/v1/credits")
    assert record_of(alice.token).last_used_at == recent

    stale = timezone.now() - timedelta(minutes=2)
    ApiSecret.objects.filter(pk=record.pk).update(last_used_at=stale)
    alice.api.get("/api/v1/credits")

    assert record_of(alice.token).last_used_at > stale + timedelta(minutes=1)


def test_it_does_not_mark_a_revoked_secret_as_used(alice):
    record = identity.secret_revoke(record=record_of(alice.token))

    alice.api.get("/api/v1/credits")

    assert record.revoked_at is not None
    assert record_of(alice.token).last_used_at is None
