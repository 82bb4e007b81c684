"""What the tests do over the API, one way everywhere: each helper is named for what it does.

A helper whose name is a plain verb (``submit``, ``start``, ``fail``...) asserts that the call
succeeded and returns what it produced; ``..._response`` helpers and ``hand_in``/``thumbs`` return
the raw response, for tests that look at the answer themselves.

``complete`` answers with the task as its own transaction committed it, in ``quality_check``; the
quality check runs after the commit (eagerly in tests), so the settled task is read with a GET.
"""

from __future__ import annotations

from django.db.models import Sum

from credits.models import Account
from tests.contract import error_types
from tests.factories import GOOD_OUTPUT, error_of, task_body

# Submitting


def submit_response(caller, **overrides):
    """``POST /api/v1/tasks`` by an owner with ``task_body(**overrides)``; raw response."""
    return caller.api.post("/api/v1/tasks", task_body(**overrides))


def submit(caller, **overrides) -> dict:
    """An owner's task, submitted (201); the task as the response shows it."""
    response = submit_response(caller, **overrides)
    assert response.status_code == 201, response.content
    return response.json()


def sub_hire_response(bot, **overrides):
    """``POST /api/v1/agent/tasks`` by an agent with ``task_body(**overrides)``; raw response."""
    return bot.api.post("/api/v1/agent/tasks", task_body(**overrides))


def sub_hire(bot, **overrides) -> dict:
    """An agent's sub-hire, submitted (201); the task as the response shows it."""
    response = sub_hire_response(bot, **overrides)
    assert response.status_code == 201, response.content
    return response.json()


# Reading


def get_task(person, tid: str) -> dict:
    """The task as ``GET /api/v1/tasks/{id}`` shows it to ``person`` (200)."""
    response = person.api.get(f"/api/v1/tasks/{tid}")
    assert response.status_code == 200, response.content
    return response.json()


def event_types(person, tid: str) -> list[str]:
    """The types of the task's recorded events, oldest first."""
    response = person.api.get(f"/api/v1/tasks/{tid}/events")
    assert response.status_code == 200, response.content
    return [event["type"] for event in response.json()]


def entries(principal) -> list[tuple[str, int]]:
    """(kind, amount) of the first page of the principal's ledger entries, newest first."""
    response = principal.api.get("/api/v1/credits/entries")
    assert response.status_code == 200, response.content
    return [(entry["kind"], entry["amount"]) for entry in response.json()["data"]]


def platform_fees() -> int:
    """What the platform's fee accounts hold together (0 before any fee was taken)."""
    return Account.objects.filter(kind="fees").aggregate(s=Sum("balance", default=0))["s"]


# The assigned agent's work


def provision_sandbox(bot, tid: str) -> str:
    """A live sandbox for the task (201); its id."""
    response = bot.api.post(f"/api/v1/tasks/{tid}/sandbox")
    assert response.status_code == 201, response.content
    return response.json()["sandboxId"]


def start(bot, tid: str) -> str:
    """Provision a sandbox and mark the task executing in it (200); the sandbox's id."""
    sid = provision_sandbox(bot, tid)
    response = bot.api.post(f"/api/v1/tasks/{tid}/executing", {"sandboxId": sid})
    assert response.status_code == 200, response.content
    return sid


def hand_in(bot, tid: str, output=GOOD_OUTPUT, **body):
    """``POST /api/v1/tasks/{id}/complete`` with ``output``; the raw response."""
    return bot.api.post(
        f"/api/v1/tasks/{tid}/complete", {"output": output, "executionTimeMs": 1200, **body}
    )


def hand_in_and_get(bot, tid: str, output=GOOD_OUTPUT, **body) -> dict:
    """Hand in ``output`` (200, in ``quality_check``); the task as the quality check left it."""
    response = hand_in(bot, tid, output, **body)
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "quality_check", response.content
    return get_task(bot, tid)


def run_to_completion(bot, tid: str) -> dict:
    """Start an assigned task and hand in a good output; the task, asserted ``completed``."""
    start(bot, tid)
    task = hand_in_and_get(bot, tid)
    assert task["status"] == "completed", task
    return task


def fail(bot, tid: str, reason: str = "execution_error", **body) -> dict:
    """The assigned agent fails the task (200); the task as the response shows it."""
    response = bot.api.post(f"/api/v1/tasks/{tid}/fail", {"reason": reason, **body})
    assert response.status_code == 200, response.content
    return response.json()


# The caller's word


def thumbs(person, tid: str, value: str):
    """``POST /api/v1/tasks/{id}/feedback`` with ``"up"`` or ``"down"``; the raw response."""
    return person.api.post(f"/api/v1/tasks/{tid}/feedback", {"feedback": value})


# Errors


def assert_error(response, status: int, code: str, param: str | None = None) -> None:
    """The response is the contract's error: this status, its type, this code and param."""
    assert response.status_code == status, response.content
    error = error_of(response)
    assert (error["type"], error["code"], error.get("param")) == (
        error_types()[status],
        code,
        param,
    ), error
