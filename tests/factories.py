"""Named people, their API client and the bodies shared by the tests; what the tests do over
the API (submit, start, hand in...) is in ``tests.actions``.

alice owns credits and submits tasks; bob operates the agent rex; charlie is an outsider with
his own agent, zed; a staff reviewer settles disputes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from django.db import connection
from django.test import Client, TestCase

from city.identity import services as identity
from city.identity.models import Agent, Owner
from credits import selectors
from credits import services as ledger


@dataclass
class Person:
    owner: Owner
    token: str

    @property
    def api(self) -> ApiClient:
        return ApiClient(self.token)

    def balance(self):
        return selectors.balance_get(owner=self.owner)


@dataclass
class Bot:
    agent: Agent
    key: str

    @property
    def id(self) -> str:
        return self.agent.pk

    @property
    def api(self) -> ApiClient:
        return ApiClient(self.key)

    def balance(self):
        return selectors.balance_get(agent=self.agent)


def make_owner(email: str, credits: int = 0, staff: bool = False, reviewer: bool = False) -> Person:
    owner, token = identity.owner_create(email=email, password="pw", staff=staff, reviewer=reviewer)
    ledger.accounts_open(owner=owner)
    if credits:
        ledger.grant_issue(owner=owner, amount=credits)
    return Person(owner, token.secret)


def make_agent(
    operator: Person, name: str, offers: dict[str, int], max_concurrent: int = 10
) -> Bot:
    agent, key = identity.agent_create(
        operator=operator.owner, name=name, offers=offers, max_concurrent=max_concurrent
    )
    ledger.accounts_open(agent=agent)
    return Bot(agent, key.secret)


class ApiClient:
    """A JSON client speaking to the API as a principal with ``Authorization: Bearer``."""

    def __init__(self, secret: str | None):
        self.secret = secret
        self.client = Client()

    def _headers(self, headers: dict | None) -> dict:
        out = dict(headers or {})
        if self.secret is not None:
            out.setdefault("Authorization", f"Bearer {self.secret}")
        return out

    def _send(self, call):
        # The end of a request is where its transaction commits: run the jobs it registered
        # with on_commit (eagerly, as Celery does in tests), even inside a test's transaction.
        if connection.in_atomic_block:
            with TestCase.captureOnCommitCallbacks(execute=True):
                return call()
        return call()

    def get(self, path: str, params: dict | None = None, headers: dict | None = None):
        return self._send(
            lambda: self.client.get(path, params or {}, headers=self._headers(headers))
        )

    def post(self, path: str, body=None, headers: dict | None = None, raw: str | None = None):
        data = raw if raw is not None else json.dumps(body if body is not None else {})
        return self._send(
            lambda: self.client.post(
                path, data, content_type="application/json", headers=self._headers(headers)
            )
        )

    def delete(self, path: str, headers: dict | None = None):
        return self._send(lambda: self.client.delete(path, headers=self._headers(headers)))

    def method(self, method: str, path: str, headers: dict | None = None):
        return self._send(lambda: self.client.generic(method, path, headers=self._headers(headers)))


def task_body(**overrides) -> dict:
    body = {
        "taskType": "code_review",
        "maxBudget": 5000,
        "input": {"description": "Review this snippet", "code": "x = 1\n"},
    }
    body.update(overrides)
    return body


GOOD_OUTPUT = {
    "findings": [{"line": 1, "severity": "low", "message": "unused name x"}],
    "summary": "One finding: x is assigned but never used.",
}


def error_of(response) -> dict:
    """The contract's error object of a response, asserting its shape."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert {"type", "code", "message"} <= set(body["error"]), body
    return body["error"]
