"""Filing, listing, reading and withdrawing disputes over the API (API.md)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from disputes.models import Dispute
from tasks.models import Task
from tests.actions import assert_error, event_types, run_to_completion, sub_hire, submit, thumbs

BODY = {"reason": "wrong_output", "description": "It reviewed another file."}


def file(person, tid: str, body: dict | None = None):
    return person.api.post(f"/api/v1/tasks/{tid}/disputes", body or BODY)


def test_it_files_a_dispute_on_a_completed_task(alice, completed, settings):
    before = timezone.now()

    response = file(alice, completed["id"])

    assert response.status_code == 201, response.content
    dispute = response.json()
    assert set(dispute) == {
        "id",
        "taskId",
        "status",
        "reason",
        "description",
        "dueBy",
        "refundedAmount",
        "decisionNote",
        "createdAt",
        "resolvedAt",
    }
    assert dispute["id"].startswith("dsp_")
    assert (dispute["taskId"], dispute["status"], dispute["reason"]) == (
        completed["id"],
        "filed",
        "wrong_output",
    )
    assert (dispute["refundedAmount"], dispute["decisionNote"], dispute["resolvedAt"]) == (
        0,
        None,
        None,
    )
    due = Dispute.objects.get(pk=dispute["id"]).due_by
    sla = timedelta(hours=settings.DISPUTE_REVIEW_SLA_HOURS)
    assert before + sla <= due <= timezone.now() + sla
    assert event_types(alice, completed["id"])[-1] == "dispute"
    assert alice.balance().available == 100_000 - 2500  # filing moves no money


def test_it_refuses_a_second_open_dispute_on_the_task(alice, completed):
    first = file(alice, completed["id"]).json()

    response = file(alice, completed["id"])

    assert_error(response, 409, "dispute_already_open")
    assert first["id"] in response.json()["error"]["message"]
    assert Dispute.objects.count() == 1


def test_it_accepts_a_new_dispute_once_the_first_is_withdrawn(alice, completed):
    first = file(alice, completed["id"]).json()
    alice.api.post(f"/api/v1/disputes/{first['id']}/withdraw")

    assert file(alice, completed["id"]).status_code == 201


def test_it_refuses_a_dispute_after_the_window(alice, completed, settings):
    completed_at = Task.objects.get(pk=completed["id"]).completed_at
    window = timedelta(days=settings.DISPUTE_WINDOW_DAYS)

    with time_machine.travel(completed_at + window - timedelta(seconds=1), tick=False):
        inside = file(alice, completed["id"])
    alice.api.post(f"/api/v1/disputes/{inside.json()['id']}/withdraw")
    with time_machine.travel(completed_at + window, tick=False):
        outside = file(alice, completed["id"])

    assert inside.status_code == 201
    assert_error(outside, 409, "dispute_window_closed")


def test_it_refuses_a_task_already_refunded_in_full(alice, completed):
    assert thumbs(alice, completed["id"], "down").json() == {"refunded": True}

    assert_error(file(alice, completed["id"]), 409, "task_refunded")


@pytest.mark.parametrize("state", ["submitted", "executing"])
def test_it_refuses_a_task_not_completed(request, alice, state):
    tid = request.getfixturevalue(state)["id"]

    assert_error(file(alice, tid), 409, f"task_{state}")
    assert not Dispute.objects.exists()


def test_it_refuses_the_assigned_agent_and_hides_the_task_from_others(rex, charlie, completed):
    assert_error(file(rex, completed["id"]), 403, "not_caller")
    assert_error(file(charlie, completed["id"]), 404, "task_not_found")
    assert not Dispute.objects.exists()


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        ({"reason": "meh", "description": "x"}, "reason_invalid", "reason"),
        ({"reason": "wrong_output"}, "description_required", "description"),
        ({**BODY, "amount": 5}, "unknown_parameter", "amount"),
    ],
)
def test_it_validates_the_body(alice, completed, body, code, param):
    assert_error(file(alice, completed["id"], body), 400, code, param)


def test_it_lets_an_agent_dispute_its_own_sub_hire(rex, zed):
    from credits.services import grant_issue

    grant_issue(agent=rex.agent, amount=5000)
    tid = sub_hire(rex, agentId=zed.id)["id"]
    run_to_completion(zed, tid)

    response = file(rex, tid)

    assert response.status_code == 201
    assert rex.api.get("/api/v1/disputes").json()["pagination"]["total"] == 1


def test_it_lists_the_callers_disputes_newest_first_with_a_status_filter(alice, rex, charlie):
    tids = [submit(alice, agentId=rex.id)["id"] for _ in range(3)]
    for tid in tids:
        run_to_completion(rex, tid)
    ids = [file(alice, tid).json()["id"] for tid in tids]
    alice.api.post(f"/api/v1/disputes/{ids[0]}/withdraw")

    everything = alice.api.get("/api/v1/disputes").json()
    filed = alice.api.get("/api/v1/disputes", {"status": "filed"}).json()

    assert [d["id"] for d in everything["data"]] == ids[::-1]
    assert everything["pagination"] == {"page": 1, "pageSize": 20, "total": 3, "totalPages": 1}
    assert [d["id"] for d in filed["data"]] == ids[:0:-1]
    assert charlie.api.get("/api/v1/disputes").json()["data"] == []
    assert_error(
        alice.api.get("/api/v1/disputes", {"status": "lost"}), 400, "status_invalid", "status"
    )


def test_it_shows_a_dispute_only_to_its_caller(alice, charlie, rex, completed):
    did = file(alice, completed["id"]).json()["id"]

    assert alice.api.get(f"/api/v1/disputes/{did}").json()["status"] == "filed"
    assert_error(charlie.api.get(f"/api/v1/disputes/{did}"), 404, "dispute_not_found")
    assert_error(rex.api.get(f"/api/v1/disputes/{did}"), 404, "dispute_not_found")


def test_it_withdraws_an_open_dispute_and_not_twice(alice, completed):
    did = file(alice, completed["id"]).json()["id"]

    response = alice.api.post(f"/api/v1/disputes/{did}/withdraw")

    assert response.status_code == 200
    assert (response.json()["status"], response.json()["resolvedAt"] is not None) == (
        "withdrawn",
        True,
    )
    assert_error(alice.api.post(f"/api/v1/disputes/{did}/withdraw"), 409, "dispute_withdrawn")
    history = list(Dispute.objects.get(pk=did).events.values_list("type", flat=True))
    assert history == ["file", "withdraw"]
