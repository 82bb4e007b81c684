"""``Idempotency-Key`` on POST: the first response is replayed; a retried submit holds once."""

from __future__ import annotations

import json
from datetime import timedelta

from django.utils import timezone

from city.api import idempotency
from city.api.models import IdempotencyKey
from city.identity.principals import Principal
from credits import services as credits
from tasks import services as task_services
from tasks.models import Task
from tests.factories import error_of, make_owner, task_body


def key(value: str = "retry-1") -> dict:
    return {"Idempotency-Key": value}


def in_flight(person, body) -> IdempotencyKey:
    """The claim a first request holds while it runs, as if its response had not come back."""
    claim = idempotency.claim(
        principal=Principal(owner=person.owner).key,
        key="retry-1",
        method="POST",
        path="/api/v1/tasks",
        data=body,
    )
    assert isinstance(claim, IdempotencyKey)
    return claim


def test_it_replays_the_first_response_byte_for_byte(alice, rex):
    body = task_body(agentId=rex.id)
    first = alice.api.post("/api/v1/tasks", body, headers=key())
    tid = first.json()["id"]
    # The task moves on; a replay is still the first response, not a fresh rendering.
    sid = rex.api.post(f"/api/v1/tasks/{tid}/sandbox").json()["sandboxId"]
    rex.api.post(f"/api/v1/tasks/{tid}/executing", {"sandboxId": sid})

    retry = alice.api.post("/api/v1/tasks", body, headers=key())

    assert first.status_code == retry.status_code == 201
    assert retry.content == first.content
    assert retry.json()["status"] == "submitted"
    assert retry["Content-Type"] == first["Content-Type"]
    assert retry["Idempotent-Replayed"] == "true"
    assert not first.has_header("Idempotent-Replayed")
    assert Task.objects.count() == 1
    assert (alice.balance().available, alice.balance().held) == (95_000, 5000)


def test_it_compares_bodies_as_parsed_json(alice, rex):
    body = task_body(agentId=rex.id)
    first = alice.api.post("/api/v1/tasks", body, headers=key())
    reordered = json.dumps(dict(reversed(list(body.items()))), indent=4)

    retry = alice.api.post("/api/v1/tasks", headers=key(), raw=reordered)

    assert retry.status_code == 201
    assert retry.content == first.content
    assert retry["Idempotent-Replayed"] == "true"
    assert Task.objects.count() == 1


def test_it_refuses_a_key_reused_with_another_body(alice, rex):
    first = alice.api.post("/api/v1/tasks", task_body(agentId=rex.id), headers=key())
    assert first.status_code == 201

    other_body = task_body(agentId=rex.id, maxBudget=6000)
    other = alice.api.post("/api/v1/tasks", other_body, headers=key())
    # The key is checked before the body is validated.
    invalid = alice.api.post("/api/v1/tasks", {"maxBudget": "lots"}, headers=key())

    for response in (other, invalid):
        assert response.status_code == 409, response.content
        error = error_of(response)
        assert (error["type"], error["code"]) == ("conflict", "idempotency_key_reused")
    assert Task.objects.count() == 1
    assert (alice.balance().available, alice.balance().held) == (95_000, 5000)


def test_it_scopes_keys_to_the_principal(alice, charlie, rex):
    body = task_body(agentId=rex.id)

    mine = alice.api.post("/api/v1/tasks", body, headers=key())
    theirs = charlie.api.post("/api/v1/tasks", body, headers=key())

    assert mine.status_code == theirs.status_code == 201
    assert not theirs.has_header("Idempotent-Replayed")
    assert mine.json()["id"] != theirs.json()["id"]
    assert alice.balance().held == charlie.balance().held == 5000


def test_it_scopes_keys_to_the_path(alice, rex):
    one = alice.api.post("/api/v1/tasks", task_body(agentId=rex.id)).json()["id"]
    two = alice.api.post("/api/v1/tasks", task_body(agentId=rex.id)).json()["id"]

    first = rex.api.post(f"/api/v1/tasks/{one}/sandbox", headers=key())
    second = rex.api.post(f"/api/v1/tasks/{two}/sandbox", headers=key())

    assert first.status_code == second.status_code == 201
    assert not second.has_header("Idempotent-Replayed")
    assert first.json()["sandboxId"] != second.json()["sandboxId"]


def test_it_replays_a_refusal_even_after_the_cause_is_gone(rex):
    poor = make_owner("poor@example.com")
    first = poor.api.post("/api/v1/tasks", task_body(), headers=key())
    assert first.status_code == 402, first.content
    credits.grant_issue(owner=poor.owner, amount=10_000)

    retry = poor.api.post("/api/v1/tasks", task_body(), headers=key())
    fresh = poor.api.post("/api/v1/tasks", task_body(), headers=key("retry-2"))

    assert retry.status_code == 402
    assert error_of(retry)["code"] == "insufficient_credits"
    assert retry.content == first.content
    assert retry["Idempotent-Replayed"] == "true"
    assert fresh.status_code == 201, fresh.content
    assert Task.objects.count() == 1
    assert (poor.balance().available, poor.balance().held) == (5000, 5000)


def test_it_never_stores_a_body_that_does_not_parse(alice, rex):
    malformed = alice.api.post("/api/v1/tasks", headers=key(), raw='{"taskType": ')
    assert (malformed.status_code, error_of(malformed)["code"]) == (400, "parse_error")
    assert not IdempotencyKey.objects.exists()

    good = alice.api.post("/api/v1/tasks", task_body(agentId=rex.id), headers=key())

    assert good.status_code == 201, good.content
    assert not good.has_header("Idempotent-Replayed")


def test_it_refuses_a_retry_while_the_first_request_is_in_flight(alice, rex):
    body = task_body(agentId=rex.id)
    in_flight(alice, body)

    response = alice.api.post("/api/v1/tasks", body, headers=key())

    assert response.status_code == 409, response.content
    error = error_of(response)
    assert (error["type"], error["code"]) == ("conflict", "idempotency_key_in_use")
    assert not Task.objects.exists()
    assert alice.balance().held == 0


def test_it_lets_a_retry_run_once_an_abandoned_claim_is_stale(alice, rex):
    body = task_body(agentId=rex.id)
    claim = in_flight(alice, body)
    IdempotencyKey.objects.filter(pk=claim.pk).update(
        created_at=timezone.now() - timedelta(minutes=6)
    )

    response = alice.api.post("/api/v1/tasks", body, headers=key())

    assert response.status_code == 201, response.content
    assert Task.objects.count() == 1


def test_it_does_not_store_a_server_error(monkeypatch, alice, rex):
    submit = task_services.task_submit
    calls = []

    def fails_once(**kwargs):
        calls.append(kwargs)
        if len(calls) == 1:
            raise RuntimeError("the worker was lost")
        return submit(**kwargs)

    monkeypatch.setattr(task_services, "task_submit", fails_once)
    body = task_body(agentId=rex.id)

    first = alice.api.post("/api/v1/tasks", body, headers=key())
    retry = alice.api.post("/api/v1/tasks", body, headers=key())

    assert first.status_code == 500
    assert error_of(first)["type"] == "server_error"
    assert retry.status_code == 201, retry.content
    assert not retry.has_header("Idempotent-Replayed")
    assert len(calls) == 2
    assert Task.objects.count() == 1
    assert (alice.balance().available, alice.balance().held) == (95_000, 5000)


def test_it_accepts_keys_up_to_255_characters(alice, rex):
    too_long = alice.api.post("/api/v1/tasks", task_body(agentId=rex.id), headers=key("k" * 256))
    longest = alice.api.post("/api/v1/tasks", task_body(agentId=rex.id), headers=key("k" * 255))

    assert too_long.status_code == 400, too_long.content
    error = error_of(too_long)
    assert error["type"] == "validation_error"
    assert error["param"] == "Idempotency-Key"
    assert longest.status_code == 201, longest.content
    assert Task.objects.count() == 1
    assert alice.balance().held == 5000


def test_it_forgets_keys_after_24_hours(alice, rex):
    body = task_body(agentId=rex.id)
    first = alice.api.post("/api/v1/tasks", body, headers=key())
    now = timezone.now()
    IdempotencyKey.objects.update(created_at=now - timedelta(hours=23, minutes=59))
    within = alice.api.post("/api/v1/tasks", body, headers=key())
    IdempotencyKey.objects.update(created_at=now - timedelta(hours=24, seconds=1))

    after = alice.api.post("/api/v1/tasks", body, headers=key())

    assert within["Idempotent-Replayed"] == "true"
    assert within.content == first.content
    assert after.status_code == 201
    assert not after.has_header("Idempotent-Replayed")
    assert after.json()["id"] != first.json()["id"]
    assert Task.objects.count() == 2
    assert alice.balance().held == 10_000
