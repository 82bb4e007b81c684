"""Every failure under /api/ has the contract's error body and status, the framework's own too."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from city.api.middleware import RequestSizeLimitMiddleware
from city.identity import services as identity
from credits.models import Entry
from tasks.models import Task
from tests.factories import ApiClient, error_of, task_body


def nothing_moved(*people) -> tuple:
    return (Task.objects.count(), Entry.objects.count(), *[p.balance() for p in people])


# Body parsing


@pytest.mark.parametrize("content_type", ["application/json", "text/plain"])
def test_it_answers_malformed_json_with_parse_error(content_type, alice):
    before = nothing_moved(alice)

    response = alice.api.client.post(
        "/api/v1/tasks",
        '{"taskType": "code_review", "maxBudget": 5000,',
        content_type=content_type,
        headers={"Authorization": f"Bearer {alice.token}"},
    )

    assert response.status_code == 400, response.content
    error = error_of(response)
    assert (error["type"], error["code"]) == ("validation_error", "parse_error")
    assert nothing_moved(alice) == before


def test_it_checks_the_kind_of_principal_before_parsing_the_body(rex):
    response = rex.api.post("/api/v1/tasks", raw="{not json")

    assert response.status_code == 403
    assert error_of(response)["code"] == "wrong_principal_kind"


# Routes and methods


@pytest.mark.parametrize(
    "path", ["/api/v1/nope", "/api/v2/tasks", "/api/v1/tasks/abc/unknown", "/api/v1/tasks/"]
)
def test_it_answers_an_unknown_path_with_not_found(path, alice):
    response = alice.api.get(path)
    posted = alice.api.post(path, {})

    for answer in (response, posted):
        assert answer.status_code == 404, answer.content
        assert error_of(answer)["type"] == "not_found"


def test_it_asks_for_credentials_before_saying_a_path_is_unknown(db):
    response = ApiClient(None).get("/api/v1/nope")

    assert response.status_code == 401
    assert error_of(response)["type"] == "authentication_error"


@pytest.mark.parametrize(
    ("method", "path", "who"),
    [
        ("DELETE", "/api/v1/tasks", "alice"),
        ("PUT", "/api/v1/credits", "alice"),
        ("PATCH", "/api/v1/credits/entries", "rex"),
        ("PUT", "/api/v1/tasks/{tid}", "alice"),
        ("GET", "/api/v1/tasks/{tid}/complete", "rex"),
    ],
)
def test_it_answers_a_wrong_method_with_405(method, path, who, request, submitted):
    principal = request.getfixturevalue(who)
    before = Task.objects.filter(pk=submitted["id"]).values().get()

    response = principal.api.method(method, path.format(tid=submitted["id"]))

    assert response.status_code == 405, response.content
    error = error_of(response)
    assert (error["type"], error["code"]) == ("validation_error", "method_not_allowed")
    assert Task.objects.filter(pk=submitted["id"]).values().get() == before


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/api/v1/agent/tasks/submitted"), ("GET", "/api/v1/agent/tasks")],
)
def test_it_answers_a_wrong_method_before_the_wrong_kind_of_principal(method, path, alice):
    response = alice.api.method(method, path)

    assert response.status_code == 405, response.content
    assert error_of(response)["code"] == "method_not_allowed"


def test_it_asks_for_credentials_before_checking_the_method(db):
    response = ApiClient(None).method("DELETE", "/api/v1/tasks")

    assert response.status_code == 401
    assert error_of(response)["type"] == "authentication_error"


# Credentials


@pytest.mark.parametrize(
    "header",
    [
        "Token x",
        "Bearer",
        "Bearer   ",
        "Basic YWxpY2U6cHc=",
        "Token {token}",
        "{token}",
    ],
)
def test_it_refuses_a_malformed_authorization_header(header, alice):
    response = ApiClient(None).get(
        "/api/v1/credits", headers={"Authorization": header.format(token=alice.token)}
    )

    assert response.status_code == 401, response.content
    assert error_of(response)["type"] == "authentication_error"
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


# Size and rate limits


def test_it_refuses_a_body_over_the_size_limit(settings, alice, rex):
    body = json.dumps(task_body(agentId=rex.id))
    settings.MAX_REQUEST_BYTES = len(body.encode()) - 1
    before = nothing_moved(alice)

    response = alice.api.post("/api/v1/tasks", raw=body)

    assert response.status_code == 413, response.content
    error = error_of(response)
    assert (error["type"], error["code"]) == ("request_too_large", "request_too_large")
    assert nothing_moved(alice) == before


def test_it_accepts_a_body_exactly_at_the_size_limit(settings, alice, rex):
    body = json.dumps(task_body(agentId=rex.id))
    settings.MAX_REQUEST_BYTES = len(body.encode())

    response = alice.api.post("/api/v1/tasks", raw=body)

    assert response.status_code == 201, response.content


def test_it_refuses_an_oversized_body_before_authenticating_it(settings, db):
    settings.MAX_REQUEST_BYTES = 10

    response = ApiClient(None).post("/api/v1/tasks", task_body())

    assert response.status_code == 413
    assert error_of(response)["type"] == "request_too_large"


def test_it_rate_limits_each_principal(settings, clock, alice, charlie, rex):
    settings.RATE_LIMIT_PER_MINUTE = 3
    for _ in range(3):
        assert alice.api.get("/api/v1/credits").status_code == 200
    before = nothing_moved(alice)

    limited = alice.api.post("/api/v1/tasks", task_body(agentId=rex.id))

    assert limited.status_code == 429, limited.content
    error = error_of(limited)
    assert (error["type"], error["code"]) == ("rate_limited", "rate_limited")
    assert limited["Retry-After"] == "50"
    assert nothing_moved(alice) == before
    assert charlie.api.get("/api/v1/credits").status_code == 200
    assert rex.api.get("/api/v1/credits").status_code == 200


def test_it_counts_the_rate_limit_per_principal_whatever_the_secret(settings, clock, alice):
    settings.RATE_LIMIT_PER_MINUTE = 3
    rotated = ApiClient(identity.owner_token_issue(owner=alice.owner).secret)
    for api in (alice.api, alice.api, rotated):
        assert api.get("/api/v1/credits").status_code == 200

    response = rotated.get("/api/v1/credits")

    assert response.status_code == 429
    assert error_of(response)["code"] == "rate_limited"


def test_it_throttles_secret_guessing_per_client_address(settings, clock, alice):
    settings.AUTH_FAILURES_PER_MINUTE = 2
    browser = ApiClient(None).client

    def get(secret: str, address: str):
        return browser.get(
            "/api/v1/credits", headers={"Authorization": f"Bearer {secret}"}, REMOTE_ADDR=address
        )

    for _ in range(2):
        guess = get("own_guessed", "10.0.0.1")
        assert (guess.status_code, error_of(guess)["code"]) == (401, "invalid_secret")

    blocked = get("own_guessed-again", "10.0.0.1")
    valid = get(alice.token, "10.0.0.1")  # only failures count and only failures are refused
    elsewhere = get("own_guessed-again", "10.0.0.2")
    clock.now += 60
    next_minute = get("own_guessed-again", "10.0.0.1")

    assert blocked.status_code == 429, blocked.content
    assert error_of(blocked)["type"] == "rate_limited"
    assert blocked["Retry-After"] == "50"
    assert valid.status_code == 200
    assert (elsewhere.status_code, error_of(elsewhere)["code"]) == (401, "invalid_secret")
    assert next_minute.status_code == 401


# The server's own failures


def test_it_answers_an_unexpected_exception_in_the_error_shape(monkeypatch, alice):
    def broken(**kwargs):
        raise RuntimeError("database on fire: secret internals")

    monkeypatch.setattr("credits.selectors.balance_get", broken)

    response = alice.api.get("/api/v1/credits")

    assert response.status_code == 500
    error = error_of(response)
    assert (error["type"], error["code"]) == ("server_error", "server_error")
    assert b"secret internals" not in response.content


def test_it_answers_an_exception_outside_the_views_in_the_error_shape(monkeypatch, alice):
    def broken(self, request):
        raise RuntimeError("middleware on fire: secret internals")

    monkeypatch.setattr(RequestSizeLimitMiddleware, "__call__", broken)
    browser = Client(raise_request_exception=False)

    api = browser.get("/api/v1/credits", headers={"Authorization": f"Bearer {alice.token}"})
    page = browser.get("/admin/login/")

    assert api.status_code == 500
    assert api["Content-Type"] == "application/json"
    error = error_of(api)
    assert (error["type"], error["code"]) == ("server_error", "server_error")
    assert b"secret internals" not in api.content
    # Outside /api/ Django's own error page stays.
    assert page.status_code == 500
    assert page["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("raw", ["null", "[]", '"x"', "5"])
def test_it_refuses_a_body_that_is_not_an_object(raw, alice):
    response = alice.api.post("/api/v1/tasks", raw=raw)
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_body"
    assert not Task.objects.exists()


def test_it_answers_json_nested_too_deeply_with_parse_error(alice):
    response = alice.api.post("/api/v1/tasks", raw="[" * 100_000 + "]" * 100_000)
    assert response.status_code == 400
    assert error_of(response)["code"] == "parse_error"
