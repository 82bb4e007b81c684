"""POST /api/v1/tasks/{id}/cancel: the caller takes back a task nobody has started."""

from __future__ import annotations

import pytest

from credits.models import Entry
from tests.actions import assert_error, event_types, get_task, sub_hire, submit
from tests.factories import GOOD_OUTPUT


def cancel(person, tid: str):
    return person.api.post(f"/api/v1/tasks/{tid}/cancel")


def test_it_cancels_an_assigned_task_nobody_started_and_gives_the_hold_back(alice, submitted):
    tid = submitted["id"]

    response = cancel(alice, tid)

    assert response.status_code == 200, response.content
    task = response.json()
    assert (task["status"], task["failureReason"], task["creditsHeld"]) == (
        "failed",
        "cancelled",
        0,
    )
    assert task["creditsCharged"] is None
    assert (alice.balance().available, alice.balance().held) == (100_000, 0)
    assert event_types(alice, tid)[-1] == "cancel"
    events = alice.api.get(f"/api/v1/tasks/{tid}/events").json()
    assert (events[-1]["from"], events[-1]["to"], events[-1]["actor"]) == (
        "submitted",
        "failed",
        f"owner:{alice.owner.pk}",
    )


def test_it_cancels_a_task_waiting_in_routing(alice, linguist):
    tid = submit(alice, taskType="translation", maxBudget=2000)["id"]
    assert get_task(alice, tid)["status"] == "routing"

    response = cancel(alice, tid)

    assert response.status_code == 200
    assert response.json()["failureReason"] == "cancelled"
    assert (alice.balance().available, alice.balance().held) == (100_000, 0)


def test_it_lets_an_agent_cancel_its_own_sub_hire_back_into_its_earnings(rex, zed):
    from credits.services import grant_issue

    grant_issue(agent=rex.agent, amount=5000)
    tid = sub_hire(rex, agentId=zed.id)["id"]
    assert rex.balance().available == 0

    response = cancel(rex, tid)

    assert response.status_code == 200
    assert (rex.balance().available, rex.balance().held) == (5000, 0)


@pytest.mark.parametrize("state", ["executing", "completed"])
def test_it_refuses_to_cancel_once_the_agent_started(request, alice, state):
    tid = request.getfixturevalue(state)["id"]
    before = alice.balance()

    response = cancel(alice, tid)

    assert_error(response, 409, f"task_{state}")
    assert alice.balance() == before
    assert "cancel" not in event_types(alice, tid)


def test_it_refuses_to_cancel_twice(alice, submitted):
    assert cancel(alice, submitted["id"]).status_code == 200
    entries = Entry.objects.count()

    assert_error(cancel(alice, submitted["id"]), 409, "task_failed")
    assert Entry.objects.count() == entries


def test_it_hides_the_task_from_another_owner(charlie, submitted, alice):
    assert_error(cancel(charlie, submitted["id"]), 404, "task_not_found")
    assert get_task(alice, submitted["id"])["status"] == "submitted"


def test_it_refuses_the_assigned_agent(rex, submitted, alice):
    assert_error(cancel(rex, submitted["id"]), 403, "not_caller")
    assert alice.balance().held == 5000


def test_it_leaves_a_cancelled_task_unstartable(alice, rex, submitted):
    tid = submitted["id"]
    sandbox = rex.api.post(f"/api/v1/tasks/{tid}/sandbox").json()["sandboxId"]
    cancel(alice, tid)

    response = rex.api.post(f"/api/v1/tasks/{tid}/executing", {"sandboxId": sandbox})

    assert_error(response, 409, "task_failed")


def test_it_refuses_cancelled_as_an_agents_failure_reason(rex, executing):
    response = rex.api.post(f"/api/v1/tasks/{executing['id']}/fail", {"reason": "cancelled"})

    assert_error(response, 400, "reason_invalid", "reason")


def test_it_answers_a_cancel_after_completion_with_409_not_a_refund(alice, rex, executing):
    tid = executing["id"]
    rex.api.post(f"/api/v1/tasks/{tid}/complete", {"output": GOOD_OUTPUT, "executionTimeMs": 9})

    assert_error(cancel(alice, tid), 409, "task_completed")
    assert get_task(alice, tid)["creditsCharged"] == 2500


def test_it_destroys_the_sandbox_of_a_cancelled_task(alice, rex, submitted, settings):
    from tasks.models import Sandbox

    sandbox = rex.api.post(f"/api/v1/tasks/{submitted['id']}/sandbox").json()["sandboxId"]

    cancel(alice, submitted["id"])

    assert Sandbox.objects.get(pk=sandbox).status == "destroyed"


def test_it_is_never_started_by_a_worker_after_cancelling(alice, linguist, bob):
    from tasks import jobs
    from tests.factories import make_agent

    tid = submit(alice, taskType="translation", maxBudget=2000)["id"]
    cancel(alice, tid)
    make_agent(bob, "free linguist", {"translation": 1500})

    jobs.sweep_timeouts()

    task = get_task(alice, tid)
    assert (task["status"], task["agentId"]) == ("failed", None)
