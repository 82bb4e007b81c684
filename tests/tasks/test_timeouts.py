"""The timeout sweep: a task that overstays its status fails with ``timeout``; its hold goes back.

Time is moved by rewriting a task's timestamps with a queryset ``update()``, never by sleeping.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.utils import timezone

from tasks import jobs, services
from tasks.models import Sandbox, Task
from tests.actions import (
    fail,
    get_task,
    hand_in,
    platform_fees,
    provision_sandbox,
    start,
    submit,
    thumbs,
)
from tests.concurrency import run_together
from tests.factories import make_agent


def age(tid: str, field: str, seconds: float) -> None:
    """Make ``field`` of the task ``seconds`` old."""
    Task.objects.filter(pk=tid).update(**{field: timezone.now() - timedelta(seconds=seconds)})


def task(tid: str) -> Task:
    return Task.objects.get(pk=tid)


def last_event(tid: str):
    return task(tid).events.order_by("-id").first()


@pytest.fixture
def routing(alice, linguist):
    """alice's translation task, waiting in routing: the one translator is busy."""
    task = get_task(alice, submit(alice, taskType="translation")["id"])
    assert task["status"] == "routing"
    return task


def assert_timed_out(tid: str, alice) -> None:
    timed_out = task(tid)
    assert timed_out.status == "failed"
    assert timed_out.failure_reason == "timeout"
    assert timed_out.credits_held == 0
    assert timed_out.credits_charged is None
    assert timed_out.hold.status == "released"
    assert (alice.balance().available, alice.balance().held) == (100_000, 0)
    event = last_event(tid)
    assert (event.type, event.to_status, event.actor) == ("fail", "failed", "system")
    assert event.data["reason"] == "timeout"


# Executing


def test_it_fails_a_task_executing_past_the_execution_timeout(executing, alice, rex, settings):
    tid = executing["id"]
    age(tid, "started_at", settings.EXECUTION_TIMEOUT_SECONDS + 1)
    assert jobs.sweep_timeouts() == 1
    assert_timed_out(tid, alice)
    assert task(tid).error_message == (f"execution exceeded {settings.EXECUTION_TIMEOUT_SECONDS} s")
    assert last_event(tid).from_status == "executing"
    assert rex.balance().available == 0
    assert platform_fees() == 0


def test_it_destroys_the_sandbox_of_a_task_that_timed_out(executing, settings):
    tid, sid = executing["id"], executing["sandboxId"]
    age(tid, "started_at", settings.EXECUTION_TIMEOUT_SECONDS + 1)
    jobs.sweep_timeouts()
    assert Sandbox.objects.get(pk=sid).status == "destroyed"
    assert not (Path(settings.SANDBOX_ROOT) / sid).exists()


def test_it_reads_the_execution_timeout_from_settings(executing, alice, settings):
    settings.EXECUTION_TIMEOUT_SECONDS = 60
    tid = executing["id"]
    age(tid, "started_at", 59)
    assert jobs.sweep_timeouts() == 0
    assert task(tid).status == "executing"
    age(tid, "started_at", 61)
    assert jobs.sweep_timeouts() == 1
    assert_timed_out(tid, alice)


def test_it_leaves_an_executing_task_within_its_time(executing, alice, settings):
    tid = executing["id"]
    age(tid, "started_at", settings.EXECUTION_TIMEOUT_SECONDS - 60)
    # Long since submitted and assigned: only the time since the start counts once executing.
    age(tid, "created_at", 10 * settings.EXECUTION_TIMEOUT_SECONDS)
    age(tid, "assigned_at", 10 * settings.EXECUTION_TIMEOUT_SECONDS)
    assert jobs.sweep_timeouts() == 0
    assert task(tid).status == "executing"
    assert (alice.balance().available, alice.balance().held) == (95_000, 5000)


# Assigned but not started


def test_it_fails_a_task_assigned_but_not_started_past_the_assignment_timeout(
    submitted, alice, rex, settings
):
    tid = submitted["id"]
    sid = rex.api.post(f"/api/v1/tasks/{tid}/sandbox").json()["sandboxId"]
    age(tid, "assigned_at", settings.ASSIGNMENT_TIMEOUT_SECONDS + 1)
    assert jobs.sweep_timeouts() == 1
    assert_timed_out(tid, alice)
    assert task(tid).error_message == (
        f"the hired agent did not start within {settings.ASSIGNMENT_TIMEOUT_SECONDS} s"
    )
    assert last_event(tid).from_status == "submitted"
    assert Sandbox.objects.get(pk=sid).status == "destroyed"
    # The agent can no longer start it.
    response = rex.api.post(f"/api/v1/tasks/{tid}/executing", {"sandboxId": sid})
    assert response.status_code == 409


def test_it_leaves_an_assigned_task_within_its_time(submitted, settings):
    tid = submitted["id"]
    settings.ASSIGNMENT_TIMEOUT_SECONDS = 120
    age(tid, "assigned_at", 100)
    age(tid, "created_at", 10_000)  # the routing timeout does not apply to an assigned task
    assert jobs.sweep_timeouts() == 0
    assert task(tid).status == "submitted"


# Routing


def test_it_fails_a_task_nobody_took_past_the_routing_timeout(routing, alice, settings):
    tid = routing["id"]
    age(tid, "routing_since", settings.ROUTING_TIMEOUT_SECONDS + 1)
    assert jobs.sweep_timeouts() == 1
    assert_timed_out(tid, alice)
    assert task(tid).error_message == (
        f"no agent took the task within {settings.ROUTING_TIMEOUT_SECONDS} s"
    )
    assert [e.type for e in task(tid).events.all()] == ["submit", "route", "fail"]
    assert task(tid).agent_id is None


def test_it_leaves_a_routing_task_within_its_time(routing, alice, settings):
    tid = routing["id"]
    age(tid, "routing_since", settings.ROUTING_TIMEOUT_SECONDS - 60)
    assert jobs.sweep_timeouts() == 0
    assert task(tid).status == "routing"
    assert alice.balance().held == 5000


def test_it_routes_a_waiting_task_once_an_agent_is_available(routing, alice, bob):
    tid = routing["id"]
    linguist = make_agent(bob, "linguist", {"translation": 1500})
    assert jobs.sweep_timeouts() == 0
    assert task(tid).agent_id is None  # not before its next attempt is due
    age(tid, "next_route_at", 1)
    assert jobs.sweep_timeouts() == 0
    routed = task(tid)
    assert (routed.status, routed.agent_id, routed.price) == ("submitted", linguist.id, 1500)
    event = last_event(tid)
    assert (event.type, event.from_status, event.to_status, event.actor) == (
        "assign",
        "routing",
        "submitted",
        "system",
    )
    assert {k: event.data[k] for k in ("agentId", "price", "direct", "runnerUp")} == {
        "agentId": linguist.id,
        "price": 1500,
        "direct": False,
        "runnerUp": None,  # the busy linguist is not eligible, so not a runner-up
    }
    assert alice.balance().held == 5000
    assert [t["id"] for t in linguist.api.get("/api/v1/agent/tasks/submitted").json()] == [tid]


def test_it_fails_rather_than_routes_a_task_past_the_routing_timeout(routing, alice, bob, settings):
    tid = routing["id"]
    age(tid, "routing_since", settings.ROUTING_TIMEOUT_SECONDS + 1)
    make_agent(bob, "linguist", {"translation": 1500})
    assert jobs.sweep_timeouts() == 1
    assert_timed_out(tid, alice)


def test_it_times_out_each_overdue_task_once(routing, executing, alice, settings):
    age(routing["id"], "routing_since", settings.ROUTING_TIMEOUT_SECONDS + 1)
    age(executing["id"], "started_at", settings.EXECUTION_TIMEOUT_SECONDS + 1)
    assert jobs.sweep_timeouts() == 2
    assert jobs.sweep_timeouts() == 0
    assert (alice.balance().available, alice.balance().held) == (100_000, 0)
    assert task(routing["id"]).events.filter(type="fail").count() == 1
    assert task(executing["id"]).events.filter(type="fail").count() == 1


# Finished tasks


@pytest.mark.parametrize("state", ["completed", "failed", "refunded"])
def test_it_leaves_a_finished_task_alone(request, alice, rex, settings, state):
    if state == "failed":
        tid = request.getfixturevalue("submitted")["id"]
        fail(rex, tid)
    else:
        tid = request.getfixturevalue("completed")["id"]
        if state == "refunded":
            thumbs(alice, tid, "down")
    assert task(tid).status == state
    before = (alice.balance(), rex.balance(), platform_fees(), task(tid).events.count())
    long_ago = 100 * settings.EXECUTION_TIMEOUT_SECONDS
    for field in ("created_at", "routing_since", "assigned_at", "started_at", "completed_at"):
        age(tid, field, long_ago)

    assert jobs.sweep_timeouts() == 0
    assert task(tid).status == state
    assert (alice.balance(), rex.balance(), platform_fees(), task(tid).events.count()) == before


def test_it_does_not_time_out_a_task_that_moved_on_after_the_sweep_picked_it(submitted, rex):
    tid = submitted["id"]
    age(tid, "assigned_at", 10_000)
    sid = rex.api.post(f"/api/v1/tasks/{tid}/sandbox").json()["sandboxId"]
    rex.api.post(f"/api/v1/tasks/{tid}/executing", {"sandboxId": sid})
    # The sweep selected it while it was overdue in submitted; by the time it locks it, it started.
    assert services.task_time_out(task_id=tid).status == "executing"
    assert task(tid).events.filter(type="fail").count() == 0


# What else the sweep repairs


def test_it_settles_a_quality_check_whose_job_was_lost(executing, rex, alice, monkeypatch):
    monkeypatch.setattr(jobs.check_quality, "delay", lambda *args: None)
    tid = executing["id"]
    assert hand_in(rex, tid).json()["status"] == "quality_check"

    age(tid, "updated_at", 60)  # recent: the job may still be on its way
    jobs.sweep_timeouts()
    assert task(tid).status == "quality_check"

    age(tid, "updated_at", jobs.STUCK_QUALITY_CHECK.total_seconds() + 1)
    assert jobs.sweep_timeouts() == 0
    assert task(tid).status == "completed"
    assert (alice.balance().available, alice.balance().held) == (97_500, 0)
    assert rex.balance().available == 2250


def test_it_destroys_sandboxes_left_live_on_a_finished_task(executing, rex, settings, monkeypatch):
    monkeypatch.setattr(jobs.destroy_sandboxes, "delay", lambda *args: None)
    tid, sid = executing["id"], executing["sandboxId"]
    fail(rex, tid)
    assert Sandbox.objects.get(pk=sid).status == "live"

    jobs.sweep_timeouts()
    assert Sandbox.objects.get(pk=sid).status == "destroyed"
    assert not (Path(settings.SANDBOX_ROOT) / sid).exists()


class BrokenEvaluator:
    """An evaluator whose backend is down."""

    def score(self, task):
        raise ConnectionError("the evaluator is unreachable")


def test_it_sweeps_the_rest_when_one_quality_check_raises(
    alice, rex, settings, executing, monkeypatch
):
    settings.QUALITY_EVALUATOR = "tests.tasks.test_timeouts.BrokenEvaluator"
    tid = executing["id"]
    assert hand_in(rex, tid).json()["status"] == "quality_check"
    age(tid, "updated_at", jobs.STUCK_QUALITY_CHECK.total_seconds() + 1)
    # Another task, failed, whose sandbox cleanup job was lost.
    monkeypatch.setattr(jobs.destroy_sandboxes, "delay", lambda *args: None)
    other = submit(alice, agentId=rex.id)["id"]
    sid = provision_sandbox(rex, other)
    fail(rex, other)

    jobs.sweep_timeouts()
    assert Sandbox.objects.get(pk=sid).status == "destroyed"
    assert task(tid).status == "quality_check"  # left for the next sweep


@pytest.mark.postgres
def test_it_lets_either_the_agent_or_the_sweep_settle_an_overdue_task(
    postgres, executing, rex, alice, settings
):
    tid = executing["id"]
    age(tid, "started_at", settings.EXECUTION_TIMEOUT_SECONDS + 1)
    complete, sweep = run_together(
        [
            lambda: hand_in(rex, tid),
            jobs.sweep_timeouts,
        ]
    )
    results = {"complete": complete, "sweep": sweep}

    settled = task(tid)
    if results["sweep"] == 1:
        assert settled.status == "failed"
        assert results["complete"].status_code == 409
        assert (alice.balance().available, alice.balance().held) == (100_000, 0)
    else:
        assert settled.status == "completed"
        assert results["complete"].status_code == 200
        assert (alice.balance().available, alice.balance().held) == (97_500, 0)
    assert settled.events.filter(type__in=["fail", "pass"]).count() == 1


# A routed agent that never starts; the caller's own execution timeout; routing's backoff


def test_it_routes_a_task_again_without_the_routed_agent_that_never_started(
    alice, rex, zed, settings
):
    tid = submit(alice)["id"]
    assert task(tid).agent_id == rex.id  # cheaper than zed
    age(tid, "assigned_at", settings.ASSIGNMENT_TIMEOUT_SECONDS + 1)

    assert jobs.sweep_timeouts() == 0  # nothing failed: it went back to routing

    again = task(tid)
    assert (again.status, again.agent_id, again.excluded_agent_ids) == (
        "submitted",
        zed.id,
        [rex.id],
    )
    assert [e.type for e in again.events.all()][-2:] == ["unassign", "assign"]
    unassigned = again.events.get(type="unassign")
    assert (unassigned.from_status, unassigned.to_status, unassigned.data["agentId"]) == (
        "submitted",
        "routing",
        rex.id,
    )
    assert tid not in [t["id"] for t in rex.api.get("/api/v1/agent/tasks/submitted").json()]
    assert rex.api.post(f"/api/v1/tasks/{tid}/sandbox").status_code == 404
    assert alice.balance().held == 5000


def test_it_fails_a_re_routed_task_nobody_else_takes_after_the_routing_timeout(
    alice, rex, settings
):
    tid = submit(alice)["id"]
    age(tid, "assigned_at", settings.ASSIGNMENT_TIMEOUT_SECONDS + 1)
    jobs.sweep_timeouts()
    assert (task(tid).status, task(tid).agent_id) == ("routing", None)  # rex is excluded now

    age(tid, "routing_since", settings.ROUTING_TIMEOUT_SECONDS + 1)
    assert jobs.sweep_timeouts() == 1

    assert_timed_out(tid, alice)


def test_it_fails_an_executing_task_past_its_own_timeout_seconds(alice, rex, settings):
    tid = submit(alice, agentId=rex.id, input={"description": "quick", "timeoutSeconds": 60})["id"]
    start(rex, tid)
    age(tid, "started_at", 59)
    assert jobs.sweep_timeouts() == 0

    age(tid, "started_at", 61)
    assert jobs.sweep_timeouts() == 1

    assert_timed_out(tid, alice)
    assert task(tid).error_message == "execution exceeded the task's timeoutSeconds"


def test_it_caps_a_tasks_own_timeout_by_the_platforms(alice, rex, settings):
    settings.EXECUTION_TIMEOUT_SECONDS = 100
    tid = submit(alice, agentId=rex.id, input={"description": "long", "timeoutSeconds": 500})["id"]
    start(rex, tid)
    age(tid, "started_at", 101)

    assert jobs.sweep_timeouts() == 1
    assert task(tid).error_message == "execution exceeded 100 s"


@pytest.mark.parametrize("value", [0, -5, "60", 1.5, True])
def test_it_refuses_a_timeout_seconds_that_is_not_a_positive_integer(alice, rex, value):
    from tests.actions import assert_error, submit_response

    response = submit_response(
        alice, agentId=rex.id, input={"description": "x", "timeoutSeconds": value}
    )

    assert response.status_code == 400
    assert_error(response, 400, response.json()["error"]["code"], "input.timeoutSeconds")
    assert alice.balance().held == 0


def test_it_retries_routing_with_backoff_on_a_controlled_clock(alice, linguist, bob):
    start_at = timezone.now()
    with time_machine.travel(start_at, tick=False) as clock:
        tid = submit(alice, taskType="translation", maxBudget=2000)["id"]
        assert (task(tid).route_attempts, task(tid).next_route_at) == (
            1,
            start_at + timedelta(seconds=15),
        )
        tried = []
        for seconds in (14, 1, 29, 1, 59, 1, 119, 1):
            clock.shift(timedelta(seconds=seconds))
            jobs.sweep_timeouts()
            tried.append(task(tid).route_attempts)

    # An attempt only when due: after 15 s, then 30, 60 and 120 more.
    assert tried == [1, 2, 2, 3, 3, 4, 4, 5]
    assert task(tid).status == "routing"
