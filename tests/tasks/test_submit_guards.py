"""A submit that could only hold money forever is refused; an agent's queue is bounded."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from city.identity.models import Agent
from tasks.models import Task
from tests.factories import error_of, make_agent, task_body


def test_it_refuses_a_task_type_no_agent_offers_and_holds_nothing(alice, rex):
    response = alice.api.post("/api/v1/tasks", task_body(taskType="code_reveiw"))

    assert response.status_code == 400
    error = error_of(response)
    assert (error["type"], error["code"], error["param"]) == (
        "validation_error",
        "unknown_task_type",
        "taskType",
    )
    assert not Task.objects.exists()
    balance = alice.balance()
    assert (balance.available, balance.held) == (100_000, 0)


def test_it_refuses_a_task_type_only_a_suspended_agent_offers(alice, rex):
    Agent.objects.filter(pk=rex.id).update(status=Agent.Status.SUSPENDED)

    response = alice.api.post("/api/v1/tasks", task_body())

    assert response.status_code == 400
    assert error_of(response)["code"] == "unknown_task_type"
    assert alice.balance().held == 0


def test_it_refuses_an_unknown_task_type_on_a_direct_hire_by_its_type(alice, rex):
    response = alice.api.post("/api/v1/tasks", task_body(taskType="poetry", agentId=rex.id))

    assert response.status_code == 400
    assert (error_of(response)["code"], error_of(response)["param"]) == (
        "unknown_task_type",
        "taskType",
    )


def test_it_refuses_an_agent_sub_hire_of_an_unknown_task_type(rex, zed):
    response = rex.api.post("/api/v1/agent/tasks", task_body(taskType="poetry"))

    assert response.status_code == 400
    assert error_of(response)["code"] == "unknown_task_type"


def test_it_accepts_a_routed_task_of_an_offered_type(alice, rex):
    response = alice.api.post("/api/v1/tasks", task_body())

    assert response.status_code == 201
    assert alice.balance().held == 5000


def test_it_lists_at_most_100_submitted_tasks_oldest_first(alice, bob):
    bot = make_agent(bob, "busy", {"code_review": 1})
    body = task_body(agentId=bot.id, maxBudget=1)
    created = [alice.api.post("/api/v1/tasks", body).json()["id"] for _ in range(103)]
    # Spread their creation times so that "oldest first" is not the insertion order by chance.
    start = timezone.now() - timedelta(days=1)
    for minutes, tid in enumerate(reversed(created)):
        Task.objects.filter(pk=tid).update(created_at=start + timedelta(minutes=minutes))

    response = bot.api.get("/api/v1/agent/tasks/submitted")

    assert response.status_code == 200
    listed = [task["id"] for task in response.json()]
    assert listed == list(reversed(created))[:100]


@pytest.mark.parametrize("status", ["executing", "completed"])
def test_it_leaves_tasks_past_submitted_out_of_the_queue(request, rex, status):
    fixture = request.getfixturevalue(status)

    listed = [task["id"] for task in rex.api.get("/api/v1/agent/tasks/submitted").json()]

    assert fixture["id"] not in listed
