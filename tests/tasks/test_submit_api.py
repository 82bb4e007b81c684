"""POST /api/v1/tasks (an owner submits) and POST /api/v1/agent/tasks (an agent sub-hires)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from city.identity.models import Agent
from credits.models import Entry, Hold
from credits.services import grant_issue
from tasks.models import Task
from tests.actions import (
    assert_error,
    event_types,
    get_task,
    start,
    sub_hire,
    sub_hire_response,
    submit,
    submit_response,
)
from tests.contract import task_fields, task_nullable
from tests.factories import error_of, make_agent, task_body


def suspend(bot) -> None:
    Agent.objects.filter(pk=bot.id).update(status=Agent.Status.SUSPENDED)


def assert_untouched(person, available: int) -> None:
    """The principal's money did not move and no task or hold was created."""
    balance = person.balance()
    assert (balance.available, balance.held) == (available, 0)
    assert not Task.objects.exists()
    assert not Hold.objects.exists()


# Direct hire


def test_it_creates_a_direct_hire_in_the_contract_shape(alice, rex):
    task_input = {
        "description": "Review this module",
        "repo": "https://example.com/repo.git",
        "code": "x = 1\n",
        "files": [{"name": "a.py", "content": "x = 1\n"}],
    }
    response = submit_response(alice, agentId=rex.id, maxBudget=4000, input=task_input)

    assert response.status_code == 201, response.content
    task = response.json()
    assert set(task) == task_fields()
    assert isinstance(task["id"], str) and task["id"] and not task["id"].isdigit()
    assert {k: task[k] for k in ("taskType", "status", "input", "maxBudget", "agentId")} == {
        "taskType": "code_review",
        "status": "submitted",
        "input": task_input,
        "maxBudget": 4000,
        "agentId": rex.id,
    }
    assert (task["creditsHeld"], task["creditsCharged"], task["creditsRefunded"]) == (4000, None, 0)
    for field in task_nullable() - {"creditsCharged", "agentId"}:
        assert task[field] is None, field
    assert task["qualityReasons"] == []
    for field in ("createdAt", "updatedAt"):
        moment = datetime.fromisoformat(task[field])
        assert moment.utcoffset().total_seconds() == 0
        assert abs((datetime.now(UTC) - moment).total_seconds()) < 60


def test_it_holds_the_whole_budget_from_the_owner_pool(alice, rex):
    task = submit(alice, agentId=rex.id, maxBudget=4321)

    balance = alice.balance()
    assert (balance.available, balance.held, balance.total) == (95_679, 4321, 100_000)
    entries = Entry.objects.filter(subject=task["id"]).select_related("account")
    assert sorted((e.account.kind, e.amount, e.kind) for e in entries) == [
        ("escrow", 4321, "hold"),
        ("pool", -4321, "hold"),
    ]
    hold = Hold.objects.get(subject=task["id"])
    assert (hold.status, hold.amount) == (Hold.Status.OPEN, 4321)


def test_it_assigns_a_direct_hire_at_once_at_the_agent_price(alice, rex):
    task = submit(alice, agentId=rex.id, taskType="bug_fix", maxBudget=6000)

    assert Task.objects.get(pk=task["id"]).price == 4000
    events = alice.api.get(f"/api/v1/tasks/{task['id']}/events").json()
    assert [e["type"] for e in events] == ["submit", "assign"]
    assert events[1]["data"] == {"agentId": rex.id, "price": 4000, "direct": True}
    assert events[1]["actor"] == f"owner:{alice.owner.pk}"


def test_it_accepts_a_price_equal_to_the_budget(alice, rex):
    response = submit_response(alice, agentId=rex.id, taskType="bug_fix", maxBudget=4000)
    assert response.status_code == 201, response.content
    assert response.json()["creditsHeld"] == 4000


def test_it_accepts_a_direct_hire_of_an_agent_at_its_cap(alice, bob):
    solo = make_agent(bob, "solo", {"translation": 1000}, max_concurrent=1)
    first = submit(alice, agentId=solo.id, taskType="translation", maxBudget=1000)
    start(solo, first["id"])

    response = submit_response(alice, agentId=solo.id, taskType="translation", maxBudget=1000)

    assert response.status_code == 201, response.content
    assert (response.json()["status"], response.json()["agentId"]) == ("submitted", solo.id)


def test_it_keeps_extra_input_keys_as_sent(alice, rex):
    task_input = {"description": "Review", "language": "python", "context": {"lines": [1, 2]}}
    response = submit_response(alice, agentId=rex.id, input=task_input)
    assert response.status_code == 201, response.content
    assert response.json()["input"] == task_input


# Smart routing


def test_it_routes_an_unassigned_task_to_the_cheapest_eligible_agent(alice, rex, zed):
    response = submit_response(alice, maxBudget=5000)

    assert response.status_code == 201, response.content
    # The response is the task as the submit committed it; routing runs after the commit.
    answered = response.json()
    assert (answered["status"], answered["agentId"], answered["creditsHeld"]) == (
        "submitted",
        None,
        5000,
    )
    task = get_task(alice, answered["id"])
    assert (task["status"], task["agentId"], task["creditsHeld"]) == ("submitted", rex.id, 5000)
    assert Task.objects.get(pk=task["id"]).price == 2500
    events = alice.api.get(f"/api/v1/tasks/{task['id']}/events").json()
    assert [(e["type"], e["from"], e["to"], e["actor"]) for e in events] == [
        ("submit", None, "submitted", f"owner:{alice.owner.pk}"),
        ("route", "submitted", "routing", "system"),
        ("assign", "routing", "submitted", "system"),
    ]
    # Both are free and unrated: rex wins on price; the event says by how much.
    assert events[2]["data"] == {
        "agentId": rex.id,
        "price": 2500,
        "score": 65.0,
        "direct": False,
        "runnerUp": {"agentId": zed.id, "price": 3000, "score": 64.0},
    }


def test_it_leaves_a_task_in_routing_while_every_agent_of_its_type_is_busy(alice, linguist):
    response = submit_response(alice, taskType="translation", maxBudget=5000)

    assert response.status_code == 201, response.content
    assert (response.json()["status"], response.json()["agentId"]) == ("submitted", None)
    task = get_task(alice, response.json()["id"])
    assert (task["status"], task["agentId"], task["creditsHeld"]) == ("routing", None, 5000)
    assert (alice.balance().available, alice.balance().held) == (95_000, 5000)
    assert event_types(alice, task["id"]) == ["submit", "route"]


def test_it_fails_at_once_when_every_agent_of_the_type_costs_more_than_the_budget(alice, zed):
    over = get_task(alice, submit(alice, maxBudget=2999)["id"])
    within = get_task(alice, submit(alice, maxBudget=3000)["id"])

    assert (over["status"], over["failureReason"], over["agentId"]) == (
        "failed",
        "budget_exceeded",
        None,
    )
    assert over["creditsHeld"] == 0
    assert event_types(alice, over["id"]) == ["submit", "route", "fail"]
    assert (within["status"], within["agentId"]) == ("submitted", zed.id)
    assert (alice.balance().available, alice.balance().held) == (97_000, 3000)


def test_it_prefers_the_less_loaded_of_two_agents_alike(alice, bob, charlie):
    busy = make_agent(bob, "busy", {"translation": 1000}, max_concurrent=2)
    idle = make_agent(bob, "idle", {"translation": 1000}, max_concurrent=2)
    start(busy, submit(charlie, taskType="translation", agentId=busy.id, maxBudget=1000)["id"])

    chosen = get_task(alice, submit(alice, taskType="translation", maxBudget=1000)["id"])

    assert chosen["agentId"] == idle.id


def test_it_takes_a_busy_agent_when_it_is_the_only_one_within_budget(alice, rex, zed, executing):
    affordable = get_task(alice, submit(alice, maxBudget=2900)["id"])

    assert affordable["agentId"] == rex.id


def test_it_skips_suspended_agents_when_routing(alice, rex, zed):
    suspend(rex)
    task = get_task(alice, submit(alice, maxBudget=5000)["id"])
    assert (task["status"], task["agentId"]) == ("submitted", zed.id)


def test_it_skips_agents_at_their_concurrency_cap(alice, bob):
    solo = make_agent(bob, "solo", {"translation": 1000}, max_concurrent=1)
    busy = submit(alice, agentId=solo.id, taskType="translation", maxBudget=1000)
    start(solo, busy["id"])

    task = get_task(alice, submit(alice, taskType="translation", maxBudget=1000)["id"])

    assert (task["status"], task["agentId"], task["creditsHeld"]) == ("routing", None, 1000)


def test_it_never_routes_a_sub_hire_to_its_caller(rex, zed):
    grant_issue(agent=rex.agent, amount=10_000)
    response = sub_hire_response(rex, maxBudget=5000)

    assert response.status_code == 201, response.content
    assert get_task(rex, response.json()["id"])["agentId"] == zed.id


# Validation


def _without(key: str) -> dict:
    body = task_body()
    del body[key]
    return body


def _with_input(**fields) -> dict:
    return task_body(input={"description": "Review this snippet", **fields})


INVALID_BODIES = [
    pytest.param(_without("taskType"), "task_type_required", "taskType", id="taskType-missing"),
    pytest.param(
        task_body(taskType="Code-Review"), "task_type_invalid", "taskType", id="taskType-not-slug"
    ),
    pytest.param(
        task_body(taskType="x" * 65), "task_type_too_long", "taskType", id="taskType-65-chars"
    ),
    pytest.param(_without("maxBudget"), "max_budget_required", "maxBudget", id="budget-missing"),
    pytest.param(task_body(maxBudget=None), "max_budget_required", "maxBudget", id="budget-null"),
    pytest.param(task_body(maxBudget=0), "max_budget_too_small", "maxBudget", id="budget-0"),
    pytest.param(
        task_body(maxBudget=1_000_000_000_001),
        "max_budget_too_large",
        "maxBudget",
        id="budget-over-1e12",
    ),
    pytest.param(task_body(maxBudget="5000"), "max_budget_invalid", "maxBudget", id="budget-str"),
    pytest.param(task_body(maxBudget=5000.0), "max_budget_invalid", "maxBudget", id="budget-float"),
    pytest.param(task_body(maxBudget=True), "max_budget_invalid", "maxBudget", id="budget-bool"),
    pytest.param(_without("input"), "input_required", "input", id="input-missing"),
    pytest.param(task_body(input="Review"), "input_invalid", "input", id="input-string"),
    pytest.param(
        task_body(input={"code": "x"}),
        "description_required",
        "input.description",
        id="description-missing",
    ),
    pytest.param(
        task_body(input={"description": "   "}),
        "description_required",
        "input.description",
        id="description-blank",
    ),
    pytest.param(
        task_body(input={"description": 5}),
        "description_invalid",
        "input.description",
        id="description-number",
    ),
    pytest.param(_with_input(files="a.py"), "files_invalid", "input.files", id="files-string"),
    pytest.param(
        _with_input(files=[{"name": "a.py"}]),
        "content_required",
        "input.files[0].content",
        id="file-without-content",
    ),
    pytest.param(
        _with_input(files=[{"name": "a.py", "content": ""}, {"content": "y"}]),
        "name_required",
        "input.files[1].name",
        id="second-file-without-name",
    ),
    pytest.param(
        task_body(priority="high"), "unknown_parameter", "priority", id="unknown-parameter"
    ),
    pytest.param(task_body(agentId=42), "agent_id_invalid", "agentId", id="agentId-number"),
]


@pytest.mark.parametrize(("body", "code", "param"), INVALID_BODIES)
def test_it_rejects_an_invalid_body_and_holds_nothing(alice, rex, body, code, param):
    response = alice.api.post("/api/v1/tasks", body)
    assert_error(response, 400, code, param)
    assert_untouched(alice, 100_000)


def test_it_rejects_a_body_that_is_not_an_object(alice):
    response = alice.api.post("/api/v1/tasks", [task_body()])
    assert_error(response, 400, "invalid_body")
    assert_untouched(alice, 100_000)


def test_it_rejects_a_task_type_that_is_not_a_string(alice):
    response = submit_response(alice, taskType=123)
    assert_error(response, 400, "task_type_invalid", "taskType")
    assert_untouched(alice, 100_000)


def test_it_accepts_the_budget_bounds(alice, rex):
    smallest = submit_response(alice, maxBudget=1)
    largest = submit_response(alice, maxBudget=1_000_000_000_000)

    assert smallest.status_code == 201, smallest.content
    # the largest budget passes validation and fails only on money
    assert_error(largest, 402, "insufficient_credits")


# Direct-hire errors


@pytest.fixture
def translator(bob):
    """An agent that takes translation, which rex does not."""
    return make_agent(bob, "translator", {"translation": 1500})


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        pytest.param({"agentId": "ag_doesnotexist"}, "agent_not_found", id="unknown"),
        pytest.param(
            {"taskType": "translation"}, "agent_does_not_take_task_type", id="wrong-task-type"
        ),
        pytest.param(
            {"taskType": "bug_fix", "maxBudget": 3999}, "price_exceeds_budget", id="over-budget"
        ),
    ],
)
def test_it_rejects_a_direct_hire_the_agent_cannot_take(alice, rex, translator, overrides, code):
    response = submit_response(alice, **{"agentId": rex.id, **overrides})
    assert_error(response, 400, code, "agentId")
    assert_untouched(alice, 100_000)


def test_it_treats_a_suspended_agent_as_not_found(alice, rex, zed):
    suspend(rex)
    response = submit_response(alice, agentId=rex.id)
    assert_error(response, 400, "agent_not_found", "agentId")
    assert_untouched(alice, 100_000)


# Money


def test_it_refuses_a_budget_above_the_available_balance(alice, rex):
    response = submit_response(alice, agentId=rex.id, maxBudget=100_001)
    assert_error(response, 402, "insufficient_credits")
    assert_untouched(alice, 100_000)


def test_it_accepts_a_budget_equal_to_the_available_balance(alice, rex):
    response = submit_response(alice, agentId=rex.id, maxBudget=100_000)
    assert response.status_code == 201, response.content
    assert (alice.balance().available, alice.balance().held) == (0, 100_000)


def test_it_counts_credits_already_held_as_unavailable(alice, rex):
    assert submit_response(alice, agentId=rex.id, maxBudget=60_000).status_code == 201

    response = submit_response(alice, agentId=rex.id, maxBudget=40_001)

    assert_error(response, 402, "insufficient_credits")
    assert (alice.balance().available, alice.balance().held) == (40_000, 60_000)
    assert Task.objects.count() == 1


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"agentId": "ag_doesnotexist"}, id="unknown-agent"),
        pytest.param({"maxBudget": "5000"}, id="budget-string"),
    ],
)
def test_it_answers_400_before_402(bob, rex, overrides):
    # bob has no credits at all: a request both invalid and unaffordable is a 400
    response = submit_response(bob, **overrides)
    assert response.status_code == 400, response.content
    assert error_of(response)["type"] == "validation_error"
    assert_untouched(bob, 0)


# Who may submit where


def test_it_refuses_an_agent_key_on_the_owner_route(rex):
    grant_issue(agent=rex.agent, amount=10_000)
    response = rex.api.post("/api/v1/tasks", task_body())
    assert_error(response, 403, "wrong_principal_kind")
    assert not Task.objects.exists()


def test_it_refuses_an_owner_token_on_the_sub_hire_route(alice, rex):
    response = alice.api.post("/api/v1/agent/tasks", task_body(agentId=rex.id))
    assert_error(response, 403, "wrong_principal_kind")
    assert_untouched(alice, 100_000)


# Parent tasks and sub-hires


def test_it_refuses_a_parent_task_from_an_owner(alice, submitted):
    response = submit_response(alice, parentTaskId=submitted["id"])
    assert_error(response, 400, "parent_task_not_allowed", "parentTaskId")
    assert (alice.balance().available, alice.balance().held) == (95_000, 5000)
    assert Task.objects.count() == 1


def test_it_sub_hires_from_an_executing_task_with_the_agent_earnings(alice, rex, zed, executing):
    grant_issue(agent=rex.agent, amount=10_000)

    response = sub_hire_response(rex, agentId=zed.id, maxBudget=3000, parentTaskId=executing["id"])

    assert response.status_code == 201, response.content
    task = response.json()
    assert (task["parentTaskId"], task["agentId"], task["creditsHeld"]) == (
        executing["id"],
        zed.id,
        3000,
    )
    assert (rex.balance().available, rex.balance().held) == (7000, 3000)
    assert (alice.balance().available, alice.balance().held) == (95_000, 5000)
    row = Task.objects.get(pk=task["id"])
    assert (row.caller_agent_id, row.caller_owner_id, row.parent_id) == (
        rex.id,
        None,
        executing["id"],
    )
    assert event_types(rex, task["id"]) == ["submit", "assign"]


def test_it_sub_hires_without_a_parent_task(rex, zed):
    grant_issue(agent=rex.agent, amount=3000)
    response = sub_hire_response(rex, agentId=zed.id, maxBudget=3000)
    assert response.status_code == 201, response.content
    assert response.json()["parentTaskId"] is None
    assert (rex.balance().available, rex.balance().held) == (0, 3000)


def test_it_refuses_a_sub_hire_beyond_the_agent_earnings(rex, zed):
    grant_issue(agent=rex.agent, amount=2999)
    response = sub_hire_response(rex, agentId=zed.id, maxBudget=3000)
    assert_error(response, 402, "insufficient_credits")
    assert (rex.balance().available, rex.balance().held) == (2999, 0)
    assert not Task.objects.exists()


def test_it_refuses_a_sub_hire_from_an_agent_in_debt(alice, charlie, rex, completed):
    cheap = make_agent(charlie, "cheap", {"code_review": 1000})
    # rex spends its 2250 payout, then the thumbs-down claws it back: its earnings go negative
    assert sub_hire_response(rex, agentId=cheap.id, maxBudget=2250).status_code == 201
    down = alice.api.post(f"/api/v1/tasks/{completed['id']}/feedback", {"feedback": "down"})
    assert down.json() == {"refunded": True}
    assert rex.balance().available == -2250

    response = sub_hire_response(rex, agentId=cheap.id, maxBudget=1000)

    assert_error(response, 402, "insufficient_credits")
    assert (rex.balance().available, rex.balance().held) == (-2250, 2250)
    assert Task.objects.filter(caller_agent=rex.agent).count() == 1


def test_it_refuses_an_agent_hiring_itself(rex):
    grant_issue(agent=rex.agent, amount=10_000)
    response = sub_hire_response(rex, agentId=rex.id)
    assert_error(response, 400, "cannot_hire_self", "agentId")
    assert (rex.balance().available, rex.balance().held) == (10_000, 0)
    assert not Task.objects.exists()


def _alice_task_for_zed(alice, zed) -> str:
    return submit(alice, agentId=zed.id)["id"]


def _rex_sub_hire_of_zed(rex, zed) -> str:
    return sub_hire(rex, agentId=zed.id, maxBudget=3000)["id"]


@pytest.mark.parametrize(
    "parent_of",
    [
        pytest.param(lambda alice, rex, zed: "doesnotexist", id="unknown"),
        pytest.param(lambda alice, rex, zed: _alice_task_for_zed(alice, zed), id="invisible"),
        pytest.param(lambda alice, rex, zed: _rex_sub_hire_of_zed(rex, zed), id="rex-is-caller"),
    ],
)
def test_it_refuses_a_parent_task_not_assigned_to_the_agent(alice, rex, zed, parent_of):
    grant_issue(agent=rex.agent, amount=10_000)
    parent = parent_of(alice, rex, zed)
    before = Task.objects.count()
    available, held = rex.balance().available, rex.balance().held

    response = sub_hire_response(rex, agentId=zed.id, parentTaskId=parent)

    assert_error(response, 400, "parent_task_not_found", "parentTaskId")
    assert (rex.balance().available, rex.balance().held) == (available, held)
    assert Task.objects.count() == before


def test_it_refuses_a_parent_task_the_agent_is_not_executing(rex, zed, completed):
    grant_issue(agent=rex.agent, amount=10_000)

    response = sub_hire_response(rex, agentId=zed.id, parentTaskId=completed["id"])

    assert_error(response, 409, "parent_task_not_executing")
    assert (rex.balance().available, rex.balance().held) == (12_250, 0)
    assert Task.objects.count() == 1


def test_it_answers_409_before_402_for_a_parent_not_executing(rex, zed, submitted):
    # rex has no earnings: the parent's state is checked before the money
    response = sub_hire_response(rex, agentId=zed.id, parentTaskId=submitted["id"])
    assert_error(response, 409, "parent_task_not_executing")


def test_it_answers_400_before_402_for_an_unknown_parent(rex, zed):
    response = sub_hire_response(rex, agentId=zed.id, parentTaskId="doesnotexist")
    assert_error(response, 400, "parent_task_not_found", "parentTaskId")
