"""Who may call what on a task: the permission matrix of API.md, and that a refusal changes nothing.

Each refused call is checked against a snapshot of the task, its events, its sandboxes, every
named person's balance and the ledger, and then the rightful caller makes the same call and
succeeds, so that the refusal is known to come from the permission and not from the task's state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from city.identity import services as identity
from city.identity.ids import secret_hash
from city.identity.models import Agent, ApiSecret
from credits import services as credits
from credits.models import Entry
from tasks.models import Sandbox, Task, TaskEvent
from tests.actions import provision_sandbox, run_to_completion, start, sub_hire, submit, thumbs
from tests.factories import GOOD_OUTPUT, ApiClient, error_of, task_body

MISSING_TASK = "doesnotexist0000000000000"


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    path: str
    state: str  # the state in which the rightful caller's call succeeds
    ok: int
    agent_only: bool
    body: Callable[[dict], dict] | None = None

    def call(self, api: ApiClient, task: dict):
        path = self.path.format(tid=task["id"], sid=task["sandboxId"])
        if self.method == "GET":
            return api.get(path)
        if self.method == "DELETE":
            return api.delete(path)
        return api.post(path, self.body(task) if self.body else {})


ENDPOINTS = [
    Endpoint("get", "GET", "/api/v1/tasks/{tid}", "submitted", 200, False),
    Endpoint("events", "GET", "/api/v1/tasks/{tid}/events", "submitted", 200, False),
    Endpoint("provision_sandbox", "POST", "/api/v1/tasks/{tid}/sandbox", "submitted", 201, True),
    Endpoint(
        "destroy_sandbox", "DELETE", "/api/v1/tasks/{tid}/sandbox/{sid}", "provisioned", 200, True
    ),
    Endpoint(
        "mark_executing",
        "POST",
        "/api/v1/tasks/{tid}/executing",
        "provisioned",
        200,
        True,
        lambda task: {"sandboxId": task["sandboxId"]},
    ),
    Endpoint(
        "complete",
        "POST",
        "/api/v1/tasks/{tid}/complete",
        "executing",
        200,
        True,
        lambda task: {"output": GOOD_OUTPUT, "executionTimeMs": 1200},
    ),
    Endpoint(
        "fail",
        "POST",
        "/api/v1/tasks/{tid}/fail",
        "executing",
        200,
        True,
        lambda task: {"reason": "execution_error", "errorMessage": "gave up"},
    ),
    Endpoint(
        "feedback",
        "POST",
        "/api/v1/tasks/{tid}/feedback",
        "completed",
        200,
        False,
        lambda task: {"feedback": "down"},
    ),
    Endpoint("cancel", "POST", "/api/v1/tasks/{tid}/cancel", "submitted", 200, False),
]
AGENT_ONLY = [e for e in ENDPOINTS if e.agent_only]


def endpoints(selection: list[Endpoint]):
    return pytest.mark.parametrize("endpoint", selection, ids=[e.name for e in selection])


def stage(state: str, caller, assignee, *, sub_hired: bool = False) -> dict:
    """A task direct-hired by ``caller`` (an owner, or an agent sub-hiring) to ``assignee``,
    brought to ``state``."""
    hire = sub_hire if sub_hired else submit
    tid, sid = hire(caller, agentId=assignee.id)["id"], None
    if state == "provisioned":
        sid = provision_sandbox(assignee, tid)
    elif state == "executing":
        sid = start(assignee, tid)
    elif state == "completed":
        sid = run_to_completion(assignee, tid)["sandboxId"]
    return {"id": tid, "sandboxId": sid}


def snapshot(task_id: str, *people) -> dict:
    """Everything a refused call must leave as it was."""
    return {
        "task": Task.objects.filter(pk=task_id).values().get(),
        "events": list(TaskEvent.objects.filter(task_id=task_id).values_list("pk", flat=True)),
        "sandboxes": list(Sandbox.objects.order_by("pk").values_list("pk", "status")),
        "tasks": Task.objects.count(),
        "entries": Entry.objects.count(),
        "balances": [person.balance() for person in people],
    }


def rightful(endpoint: Endpoint, alice, rex):
    """The principal the endpoint is for, on alice's task with rex assigned."""
    return rex if endpoint.agent_only else alice


def secret_of(person) -> str:
    return getattr(person, "key", None) or person.token


# The matrix


@endpoints(ENDPOINTS)
def test_it_answers_an_unrelated_agent_as_if_the_task_did_not_exist(endpoint, alice, rex, zed):
    task = stage(endpoint.state, alice, rex)
    before = snapshot(task["id"], alice, rex, zed)

    response = endpoint.call(zed.api, task)

    assert response.status_code == 404, response.content
    assert error_of(response)["type"] == "not_found"
    assert error_of(response)["code"] == "task_not_found"
    assert snapshot(task["id"], alice, rex, zed) == before
    ghost = endpoint.call(zed.api, {**task, "id": MISSING_TASK})
    assert (ghost.status_code, error_of(ghost)["code"]) == (404, "task_not_found")
    assert endpoint.call(rightful(endpoint, alice, rex).api, task).status_code == endpoint.ok


@endpoints(ENDPOINTS)
def test_it_answers_another_owner_without_revealing_the_task(endpoint, alice, rex, charlie):
    task = stage(endpoint.state, alice, rex)
    before = snapshot(task["id"], alice, rex, charlie)

    response = endpoint.call(charlie.api, task)

    # The kind of principal is checked before the task is looked at: an owner on an agent route
    # is 403 whether or not the task exists, so neither answer is an existence oracle.
    expected = (403, "wrong_principal_kind") if endpoint.agent_only else (404, "task_not_found")
    assert (response.status_code, error_of(response)["code"]) == expected, response.content
    assert snapshot(task["id"], alice, rex, charlie) == before
    ghost = endpoint.call(charlie.api, {**task, "id": MISSING_TASK})
    assert (ghost.status_code, error_of(ghost)["code"]) == expected
    assert endpoint.call(rightful(endpoint, alice, rex).api, task).status_code == endpoint.ok


@endpoints(ENDPOINTS)
def test_it_refuses_the_rightful_callers_revoked_secret(endpoint, alice, rex):
    task = stage(endpoint.state, alice, rex)
    caller = rightful(endpoint, alice, rex)
    record = ApiSecret.objects.get(secret_hash=secret_hash(secret_of(caller)))
    identity.secret_revoke(record=record)
    before = snapshot(task["id"], alice, rex)

    response = endpoint.call(caller.api, task)

    assert response.status_code == 401, response.content
    assert error_of(response)["type"] == "authentication_error"
    assert error_of(response)["code"] == "invalid_secret"
    assert snapshot(task["id"], alice, rex) == before
    if endpoint.agent_only:
        fresh = identity.agent_key_issue(agent=rex.agent).secret
    else:
        fresh = identity.owner_token_issue(owner=alice.owner).secret
    assert endpoint.call(ApiClient(fresh), task).status_code == endpoint.ok


@endpoints(ENDPOINTS)
def test_it_refuses_a_call_without_credentials(endpoint, alice, rex):
    task = stage(endpoint.state, alice, rex)
    before = snapshot(task["id"], alice, rex)

    response = endpoint.call(ApiClient(None), task)

    assert response.status_code == 401, response.content
    assert error_of(response)["type"] == "authentication_error"
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert snapshot(task["id"], alice, rex) == before
    assert endpoint.call(rightful(endpoint, alice, rex).api, task).status_code == endpoint.ok


@endpoints(AGENT_ONLY)
def test_it_refuses_an_owner_an_agent_action_on_their_own_task(endpoint, alice, rex):
    task = stage(endpoint.state, alice, rex)
    before = snapshot(task["id"], alice, rex)

    response = endpoint.call(alice.api, task)

    assert response.status_code == 403, response.content
    assert error_of(response)["type"] == "forbidden"
    assert error_of(response)["code"] == "wrong_principal_kind"
    assert snapshot(task["id"], alice, rex) == before
    assert endpoint.call(rex.api, task).status_code == endpoint.ok


# Sub-hires: the hiring agent is the caller, not the assignee


@pytest.fixture
def rex_with_earnings(rex):
    credits.grant_issue(agent=rex.agent, amount=10_000)
    return rex


@endpoints(AGENT_ONLY)
def test_it_refuses_the_hiring_agent_an_assignee_action_on_its_sub_task(
    endpoint, alice, rex_with_earnings, zed
):
    rex = rex_with_earnings
    task = stage(endpoint.state, rex, zed, sub_hired=True)
    before = snapshot(task["id"], alice, rex, zed)

    response = endpoint.call(rex.api, task)

    assert response.status_code == 403, response.content
    assert error_of(response)["type"] == "forbidden"
    assert error_of(response)["code"] == "not_assignee"
    assert snapshot(task["id"], alice, rex, zed) == before
    assert endpoint.call(zed.api, task).status_code == endpoint.ok


def test_it_refuses_feedback_from_the_assignee_of_a_sub_task(rex_with_earnings, zed):
    rex = rex_with_earnings
    task = stage("completed", rex, zed, sub_hired=True)
    before = snapshot(task["id"], rex, zed)

    response = thumbs(zed, task["id"], "down")

    assert response.status_code == 403, response.content
    assert error_of(response)["code"] == "not_caller"
    assert snapshot(task["id"], rex, zed) == before
    assert thumbs(rex, task["id"], "up").json() == {"refunded": False}


def test_it_hides_a_sub_task_from_the_owner_of_the_parent_task(alice, rex_with_earnings, zed):
    rex = rex_with_earnings
    parent = stage("executing", alice, rex)
    sub = sub_hire(rex, agentId=zed.id, parentTaskId=parent["id"])

    response = alice.api.get(f"/api/v1/tasks/{sub['id']}")

    assert response.status_code == 404
    assert error_of(response)["code"] == "task_not_found"
    assert alice.api.get("/api/v1/tasks").json()["pagination"]["total"] == 1


# The kind of principal a route is for


def test_it_refuses_an_agent_key_on_the_owner_submit_route(alice, rex_with_earnings, zed):
    rex = rex_with_earnings
    before = (Task.objects.count(), Entry.objects.count(), rex.balance())

    response = rex.api.post("/api/v1/tasks", task_body(agentId=zed.id))
    # The kind is checked before the body: an invalid body gets the same answer.
    invalid = rex.api.post("/api/v1/tasks", {"maxBudget": "lots"})

    for refused in (response, invalid):
        assert refused.status_code == 403, refused.content
        assert error_of(refused)["type"] == "forbidden"
        assert error_of(refused)["code"] == "wrong_principal_kind"
    assert (Task.objects.count(), Entry.objects.count(), rex.balance()) == before


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/api/v1/agent/tasks"), ("GET", "/api/v1/agent/tasks/submitted")],
    ids=["agent_submit", "list_submitted"],
)
def test_it_refuses_an_owner_token_on_agent_routes(method, path, alice, rex):
    before = (Task.objects.count(), Entry.objects.count(), alice.balance())

    if method == "POST":
        response = alice.api.post(path, task_body(agentId=rex.id))
    else:
        response = alice.api.get(path)

    assert response.status_code == 403, response.content
    assert error_of(response)["type"] == "forbidden"
    assert error_of(response)["code"] == "wrong_principal_kind"
    assert (Task.objects.count(), Entry.objects.count(), alice.balance()) == before


def test_it_refuses_every_request_of_a_suspended_agent(alice, rex, zed, executing):
    tid = executing["id"]
    Agent.objects.filter(pk=rex.id).update(status=Agent.Status.SUSPENDED)
    before = snapshot(tid, alice, rex)

    responses = [
        rex.api.get("/api/v1/tasks"),
        rex.api.get(f"/api/v1/tasks/{tid}"),
        rex.api.get("/api/v1/agent/tasks/submitted"),
        rex.api.get("/api/v1/credits"),
        rex.api.post(
            f"/api/v1/tasks/{tid}/complete", {"output": GOOD_OUTPUT, "executionTimeMs": 5}
        ),
        rex.api.post(f"/api/v1/tasks/{tid}/fail", {"reason": "execution_error"}),
    ]

    for response in responses:
        assert response.status_code == 403, response.content
        assert error_of(response)["type"] == "forbidden"
        assert error_of(response)["code"] == "agent_suspended"
    assert snapshot(tid, alice, rex) == before
    assert zed.api.get("/api/v1/agent/tasks/submitted").status_code == 200


# The dashboard's session login


def test_it_lets_an_owner_logged_in_to_the_dashboard_use_the_api(alice, submitted):
    browser = Client()
    browser.force_login(alice.owner.user)

    tasks = browser.get("/api/v1/tasks")
    balance = browser.get("/api/v1/credits")

    assert tasks.status_code == 200
    assert [t["id"] for t in tasks.json()["data"]] == [submitted["id"]]
    assert balance.json() == {"available": 95_000, "held": 5000, "total": 100_000}


def test_it_applies_the_same_rules_to_a_dashboard_session(alice, charlie, submitted):
    browser = Client()
    browser.force_login(charlie.owner.user)

    other = browser.get(f"/api/v1/tasks/{submitted['id']}")
    agent_route = browser.get("/api/v1/agent/tasks/submitted")

    assert (other.status_code, error_of(other)["code"]) == (404, "task_not_found")
    assert (agent_route.status_code, error_of(agent_route)["code"]) == (
        403,
        "wrong_principal_kind",
    )


@pytest.mark.parametrize("staff", [False, True], ids=["plain_user", "superuser"])
def test_it_refuses_a_logged_in_user_who_is_not_an_owner(staff, alice, submitted):
    user = get_user_model().objects.create_user(
        username="mallory", password="pw", is_staff=staff, is_superuser=staff
    )
    browser = Client()
    browser.force_login(user)

    for path in ("/api/v1/tasks", "/api/v1/credits", f"/api/v1/tasks/{submitted['id']}"):
        response = browser.get(path)
        assert response.status_code == 401, (path, response.content)
        assert error_of(response)["type"] == "authentication_error"
