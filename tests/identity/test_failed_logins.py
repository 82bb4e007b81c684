"""Failed secrets are limited per client address; a valid secret is never refused by that."""

from __future__ import annotations

import pytest

from tests.factories import ApiClient, error_of


@pytest.fixture(autouse=True)
def _few_failures(settings, clock):
    settings.AUTH_FAILURES_PER_MINUTE = 3


def guess(headers: dict | None = None):
    return ApiClient("own_not-a-real-secret").get("/api/v1/credits", headers=headers)


def test_it_answers_429_once_an_address_exceeds_its_failures():
    statuses = [guess().status_code for _ in range(4)]

    assert statuses == [401, 401, 401, 429]


def test_it_still_accepts_a_valid_owner_token_from_a_throttled_address(alice):
    for _ in range(5):
        guess()
    assert guess().status_code == 429

    response = alice.api.get("/api/v1/credits")

    assert response.status_code == 200
    assert response.json()["available"] == 100_000


def test_it_still_accepts_a_valid_agent_key_from_a_throttled_address(rex):
    for _ in range(5):
        guess()

    assert rex.api.get("/api/v1/credits").status_code == 200


def test_it_ignores_x_forwarded_for_without_trusted_proxies():
    # A guesser cannot escape the limit by inventing a new address each time.
    statuses = [guess({"X-Forwarded-For": f"10.0.0.{i}"}).status_code for i in range(4)]

    assert statuses == [401, 401, 401, 429]


def test_it_counts_by_the_address_the_trusted_proxy_saw(settings):
    settings.TRUSTED_PROXY_COUNT = 1
    # The client may prepend anything; the proxy appends the address it saw.
    for _ in range(3):
        assert guess({"X-Forwarded-For": "6.6.6.6, 203.0.113.7"}).status_code == 401

    assert guess({"X-Forwarded-For": "1.1.1.1, 203.0.113.7"}).status_code == 429
    response = guess({"X-Forwarded-For": "6.6.6.6, 198.51.100.2"})
    assert response.status_code == 401
    assert error_of(response)["code"] == "invalid_secret"


def test_it_counts_with_two_trusted_proxies_the_second_from_the_right(settings):
    settings.TRUSTED_PROXY_COUNT = 2
    for _ in range(3):
        guess({"X-Forwarded-For": "203.0.113.7, 10.0.0.1"})

    assert guess({"X-Forwarded-For": "203.0.113.7, 10.0.0.2"}).status_code == 429
    assert guess({"X-Forwarded-For": "198.51.100.2, 10.0.0.1"}).status_code == 401


def test_it_answers_429_with_retry_after_in_the_error_body():
    for _ in range(3):
        guess()

    response = guess()

    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1
    assert error_of(response)["type"] == "rate_limited"
