"""giveFeedback: a thumbs-down strictly before the deadline refunds the whole charge."""

from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest
from django.utils import timezone

from credits import services as credits
from credits.models import Entry
from tasks import services
from tasks.models import Task
from tests.actions import (
    entries,
    fail,
    platform_fees,
    run_to_completion,
    start,
    sub_hire,
    sub_hire_response,
    submit,
    thumbs,
)
from tests.concurrency import run_together
from tests.factories import error_of, make_agent

# Thumbs up


def test_it_records_a_thumbs_up_and_moves_no_money(completed, alice, rex):
    tid = completed["id"]
    before = (alice.balance(), rex.balance(), platform_fees(), Entry.objects.count())
    response = thumbs(alice, tid, "up")
    assert response.status_code == 200
    assert response.json() == {"refunded": False}
    task = alice.api.get(f"/api/v1/tasks/{tid}").json()
    assert (task["status"], task["feedback"], task["creditsRefunded"]) == ("completed", "up", 0)
    assert (alice.balance(), rex.balance(), platform_fees(), Entry.objects.count()) == before
    last = alice.api.get(f"/api/v1/tasks/{tid}/events").json()[-1]
    assert (last["type"], last["actor"], last["data"]) == (
        "feedback",
        f"owner:{alice.owner.pk}",
        {"feedback": "up"},
    )


# Thumbs down in the window


def test_it_refunds_the_whole_charge_on_a_thumbs_down_in_the_window(completed, alice, rex):
    tid = completed["id"]
    assert (alice.balance().available, rex.balance().available, platform_fees()) == (
        97_500,
        2250,
        250,
    )

    response = thumbs(alice, tid, "down")
    assert response.status_code == 200
    assert response.json() == {"refunded": True}
    task = alice.api.get(f"/api/v1/tasks/{tid}").json()
    assert task["status"] == "refunded"
    assert task["feedback"] == "down"
    assert task["creditsCharged"] == 2500
    assert task["creditsRefunded"] == task["creditsCharged"]

    assert (alice.balance().available, alice.balance().held) == (100_000, 0)
    assert rex.balance().available == 0
    assert platform_fees() == 0
    assert entries(alice)[0] == ("refund", 2500)
    assert entries(rex) == [("clawback", -2250), ("payout", 2250)]
    events = alice.api.get(f"/api/v1/tasks/{tid}/events").json()
    assert [(e["type"], e["from"], e["to"]) for e in events[-2:]] == [
        ("feedback", "completed", "completed"),
        ("refund", "completed", "refunded"),
    ]
    assert events[-1]["data"] == {"amount": 2500, "refundedTotal": 2500, "via": "feedback"}


@pytest.mark.parametrize(
    ("bps", "price", "fee"),
    [(1234, 2501, 308), (333, 1001, 33), (1, 9999, 0), (10000, 777, 777)],
)
def test_it_claws_back_the_fee_and_the_payout_exactly(settings, alice, bob, bps, price, fee):
    settings.PLATFORM_FEE_BPS = bps
    odd = make_agent(bob, "odd", {"code_review": price})
    tid = submit(alice, agentId=odd.id, maxBudget=10_000)["id"]
    run_to_completion(odd, tid)
    assert (odd.balance().available, platform_fees()) == (price - fee, fee)

    assert thumbs(alice, tid, "down").json() == {"refunded": True}
    assert (alice.balance().available, alice.balance().held) == (100_000, 0)
    assert odd.balance().available == 0
    assert platform_fees() == 0
    assert Task.objects.get(pk=tid).credits_refunded == price


def test_it_refunds_what_is_left_after_a_partial_refund(settings, alice, bob):
    settings.PLATFORM_FEE_BPS = 1234
    odd = make_agent(bob, "odd", {"code_review": 2501})  # fee floor(308.6234) = 308
    tid = submit(alice, agentId=odd.id)["id"]
    run_to_completion(odd, tid)
    task = Task.objects.get(pk=tid)
    # A dispute settled in part gave 1000 back: 123 (floor 123.15) from fees, 877 from the agent.
    credits.refund_issue(hold=task.hold, amount=1000, reference=f"task:{tid}:refund:dispute")
    Task.objects.filter(pk=tid).update(credits_refunded=1000)
    assert (alice.balance().available, odd.balance().available, platform_fees()) == (
        98_499,
        1316,
        185,
    )

    assert thumbs(alice, tid, "down").json() == {"refunded": True}
    task = Task.objects.get(pk=tid)
    assert (task.status, task.credits_refunded, task.credits_charged) == ("refunded", 2501, 2501)
    assert (alice.balance().available, alice.balance().held) == (100_000, 0)
    # The remaining 1501 takes the fee share of the running total, floor(2501 * 308 / 2501) -
    # 123 = 185, from fees and 1316 from the agent: refunds in parts reverse the charge exactly.
    assert entries(alice)[0] == ("refund", 1501)
    assert entries(odd)[0] == ("clawback", -1316)
    assert (odd.balance().available, platform_fees()) == (0, 0)


def test_it_shows_the_refund_deadline_as_completion_plus_the_window(completed, alice, settings):
    task = alice.api.get(f"/api/v1/tasks/{completed['id']}").json()
    completed_at = datetime.fromisoformat(task["completedAt"].replace("Z", "+00:00"))
    deadline = datetime.fromisoformat(task["feedbackRefundDeadline"].replace("Z", "+00:00"))
    assert deadline - completed_at == timedelta(seconds=settings.FEEDBACK_REFUND_WINDOW_SECONDS)


# Thumbs down after the window


def _assert_not_refunded(response, tid: str, alice, rex) -> None:
    assert response.status_code == 200
    assert response.json() == {"refunded": False}
    task = Task.objects.get(pk=tid)
    assert (task.status, task.feedback, task.credits_refunded) == ("completed", "down", 0)
    assert (alice.balance().available, rex.balance().available, platform_fees()) == (
        97_500,
        2250,
        250,
    )
    assert not task.events.filter(type="refund").exists()


def test_it_does_not_refund_a_thumbs_down_after_the_window(completed, alice, rex, settings):
    tid = completed["id"]
    Task.objects.filter(pk=tid).update(
        completed_at=timezone.now() - timedelta(seconds=settings.FEEDBACK_REFUND_WINDOW_SECONDS + 1)
    )
    _assert_not_refunded(thumbs(alice, tid, "down"), tid, alice, rex)


def test_it_does_not_refund_with_a_zero_window(completed, alice, rex, settings):
    settings.FEEDBACK_REFUND_WINDOW_SECONDS = 0
    _assert_not_refunded(thumbs(alice, completed["id"], "down"), completed["id"], alice, rex)


def _at(monkeypatch, moment) -> None:
    """Freeze the clock the feedback service reads."""
    monkeypatch.setattr(services, "timezone", SimpleNamespace(now=lambda: moment))


def test_it_does_not_refund_a_thumbs_down_exactly_at_the_deadline(
    completed, alice, rex, settings, monkeypatch
):
    tid = completed["id"]
    done_at = timezone.now() - timedelta(seconds=5)
    Task.objects.filter(pk=tid).update(completed_at=done_at)
    _at(monkeypatch, done_at + timedelta(seconds=settings.FEEDBACK_REFUND_WINDOW_SECONDS))
    _assert_not_refunded(thumbs(alice, tid, "down"), tid, alice, rex)


def test_it_refunds_a_thumbs_down_just_before_the_deadline(
    completed, alice, rex, settings, monkeypatch
):
    tid = completed["id"]
    done_at = timezone.now() - timedelta(seconds=5)
    Task.objects.filter(pk=tid).update(completed_at=done_at)
    deadline = done_at + timedelta(seconds=settings.FEEDBACK_REFUND_WINDOW_SECONDS)
    _at(monkeypatch, deadline - timedelta(microseconds=1))
    assert thumbs(alice, tid, "down").json() == {"refunded": True}
    assert Task.objects.get(pk=tid).status == "refunded"
    assert alice.balance().available == 100_000


def test_it_does_not_refund_a_late_thumbs_up_either(completed, alice, rex, settings):
    settings.FEEDBACK_REFUND_WINDOW_SECONDS = 0
    assert thumbs(alice, completed["id"], "up").json() == {"refunded": False}
    assert (alice.balance().available, rex.balance().available) == (97_500, 2250)


# Refusals


@pytest.mark.parametrize(("first", "second"), [("up", "down"), ("down", "down"), ("down", "up")])
def test_it_takes_feedback_once(completed, alice, rex, first, second):
    tid = completed["id"]
    assert thumbs(alice, tid, first).status_code == 200
    after_first = (alice.balance(), rex.balance(), platform_fees())
    response = thumbs(alice, tid, second)
    assert response.status_code == 409
    error = error_of(response)
    assert (error["type"], error["code"]) == ("conflict", "feedback_already_given")
    assert Task.objects.get(pk=tid).feedback == first
    assert (alice.balance(), rex.balance(), platform_fees()) == after_first
    assert Task.objects.get(pk=tid).events.filter(type="feedback").count() == 1


@pytest.mark.parametrize("state", ["submitted", "executing", "failed"])
def test_it_refuses_feedback_on_a_task_that_is_not_completed(request, alice, rex, state):
    if state == "failed":
        tid = request.getfixturevalue("submitted")["id"]
        fail(rex, tid)
    else:
        tid = request.getfixturevalue(state)["id"]
    response = thumbs(alice, tid, "down")
    assert response.status_code == 409
    assert error_of(response)["code"] == f"task_{state}"
    assert Task.objects.get(pk=tid).feedback == ""


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        ({"feedback": "meh"}, "feedback_invalid", "feedback"),
        ({"feedback": "UP"}, "feedback_invalid", "feedback"),
        ({"feedback": True}, "feedback_invalid", "feedback"),
        ({}, "feedback_required", "feedback"),
        ({"feedback": "down", "comment": "bad"}, "unknown_parameter", "comment"),
    ],
)
def test_it_validates_the_feedback_body(completed, alice, body, code, param):
    tid = completed["id"]
    response = alice.api.post(f"/api/v1/tasks/{tid}/feedback", body)
    assert response.status_code == 400
    error = error_of(response)
    assert (error["code"], error["param"]) == (code, param)
    assert Task.objects.get(pk=tid).feedback == ""
    assert alice.balance().available == 97_500


def test_it_refuses_feedback_from_the_assignee(completed, rex):
    response = thumbs(rex, completed["id"], "down")
    assert response.status_code == 403
    assert error_of(response)["code"] == "not_caller"
    assert Task.objects.get(pk=completed["id"]).status == "completed"
    assert rex.balance().available == 2250


@pytest.mark.parametrize("outsider", ["charlie", "zed"])
def test_it_hides_the_task_from_an_outsider(request, completed, alice, outsider):
    response = thumbs(request.getfixturevalue(outsider), completed["id"], "down")
    assert response.status_code == 404
    assert error_of(response)["code"] == "task_not_found"
    assert Task.objects.get(pk=completed["id"]).feedback == ""
    assert alice.balance().available == 97_500


@pytest.mark.postgres
def test_it_refunds_once_under_two_concurrent_thumbs_down(postgres, completed, alice, rex):
    tid = completed["id"]
    responses = run_together([lambda: thumbs(alice, tid, "down")] * 2)
    assert sorted(r.status_code for r in responses) == [200, 409]
    assert (alice.balance().available, rex.balance().available, platform_fees()) == (100_000, 0, 0)


# Sub-hires: the hiring agent is the caller


@pytest.fixture
def cheap(bob):
    """bob's second agent, hired by rex: code_review at 1000."""
    return make_agent(bob, "cheap", {"code_review": 1000})


def test_it_refunds_a_sub_hire_to_the_hiring_agents_earnings(alice, rex, cheap):
    run_to_completion(rex, submit(alice, agentId=rex.id)["id"])  # rex earns 2250
    parent = submit(alice, agentId=rex.id)["id"]
    start(rex, parent)
    sub = sub_hire(rex, agentId=cheap.id, maxBudget=2000, parentTaskId=parent)["id"]
    run_to_completion(cheap, sub)
    assert (rex.balance().available, rex.balance().held) == (1250, 0)
    assert (cheap.balance().available, platform_fees()) == (900, 350)

    # The assigned agent may not give it feedback; alice, whose task it serves, cannot see it.
    assert thumbs(cheap, sub, "down").status_code == 403
    assert thumbs(alice, sub, "down").status_code == 404

    response = thumbs(rex, sub, "down")
    assert response.status_code == 200
    assert response.json() == {"refunded": True}
    assert Task.objects.get(pk=sub).status == "refunded"
    assert (rex.balance().available, rex.balance().held) == (2250, 0)
    assert cheap.balance().available == 0
    assert platform_fees() == 250
    assert entries(rex)[0] == ("refund", 1000)
    refund = Task.objects.get(pk=sub).events.get(type="refund")
    assert refund.actor == f"agent:{rex.id}"
    # The parent is untouched.
    assert Task.objects.get(pk=parent).status == "executing"


def test_it_lets_a_clawback_take_an_agents_earnings_below_zero(alice, rex, cheap):
    earned = submit(alice, agentId=rex.id)["id"]
    run_to_completion(rex, earned)  # rex earns 2250
    sub_hire(rex, agentId=cheap.id, maxBudget=2000)
    assert (rex.balance().available, rex.balance().held) == (250, 2000)

    assert thumbs(alice, earned, "down").json() == {"refunded": True}
    assert (rex.balance().available, rex.balance().held) == (-2000, 2000)
    assert entries(rex)[0] == ("clawback", -2250)
    assert (alice.balance().available, alice.balance().held) == (100_000, 0)

    # Owing the platform, rex cannot hire again.
    again = sub_hire_response(rex, agentId=cheap.id, maxBudget=1000)
    assert again.status_code == 402
    assert error_of(again)["code"] == "insufficient_credits"
