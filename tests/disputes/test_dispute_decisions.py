"""A reviewer's decisions: every one through a service, money through task_refund and the
ledger, checked to the cent."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from credits.models import Entry
from credits.services import RefundExceedsCharge
from disputes import services
from disputes.errors import DecisionNoteRequired, DisputeClosed, NotReviewer, TaskAlreadyRefunded
from disputes.models import Dispute
from tasks.models import Task
from tests.actions import assert_error, get_task, platform_fees, thumbs
from tests.concurrency import run_together


@pytest.fixture
def staff_user(reviewer):
    return reviewer.owner.user  # staff with every permission, review_dispute among them


@pytest.fixture
def dispute(alice, completed) -> str:
    response = alice.api.post(
        f"/api/v1/tasks/{completed['id']}/disputes",
        {"reason": "incomplete_delivery", "description": "Half the files were skipped."},
    )
    assert response.status_code == 201, response.content
    return response.json()["id"]


def history(did: str) -> list[tuple[str, str, str]]:
    return list(Dispute.objects.get(pk=did).events.values_list("type", "from_status", "to_status"))


def test_it_refunds_in_full_and_moves_the_task_to_refunded(
    staff_user, dispute, alice, rex, completed
):
    settled = services.dispute_refund(reviewer=staff_user, dispute_id=dispute, note="Agreed.")

    assert (settled.status, settled.refunded_amount, settled.decision_note) == (
        "refunded",
        2500,
        "Agreed.",
    )
    assert settled.reviewer == staff_user
    task = get_task(alice, completed["id"])
    assert (task["status"], task["creditsRefunded"]) == ("refunded", 2500)
    assert alice.balance().available == 100_000
    assert (rex.balance().available, platform_fees()) == (0, 0)
    assert history(dispute) == [
        ("file", "", "filed"),
        ("start_review", "filed", "under_review"),
        ("refund", "under_review", "refunded"),
    ]
    owner_view = alice.api.get(f"/api/v1/disputes/{dispute}").json()
    assert (owner_view["status"], owner_view["refundedAmount"]) == ("refunded", 2500)


def test_it_refunds_in_part_splitting_the_clawback_as_api_md_says(
    staff_user, dispute, alice, rex, completed
):
    services.dispute_start_review(reviewer=staff_user, dispute_id=dispute)

    settled = services.dispute_refund(reviewer=staff_user, dispute_id=dispute, amount=999)

    assert (settled.status, settled.refunded_amount) == ("partially_refunded", 999)
    task = get_task(alice, completed["id"])
    assert (task["status"], task["creditsRefunded"]) == ("completed", 999)
    # fee 250 of charge 2500: floor(999 × 250 / 2500) = 99 from the fees, 900 from the agent.
    assert platform_fees() == 250 - 99
    assert rex.balance().available == 2250 - 900
    assert alice.balance().available == 100_000 - 2500 + 999


def test_it_refuses_a_partial_refund_above_what_is_refundable(staff_user, dispute, alice):
    entries = Entry.objects.count()

    with pytest.raises(RefundExceedsCharge):
        services.dispute_refund(reviewer=staff_user, dispute_id=dispute, amount=2501)

    assert Entry.objects.count() == entries
    assert Dispute.objects.get(pk=dispute).status == "filed"  # the whole decision rolled back


def test_it_rejects_with_a_note_and_moves_no_money(staff_user, dispute, alice):
    entries = Entry.objects.count()

    with pytest.raises(DecisionNoteRequired):
        services.dispute_reject(reviewer=staff_user, dispute_id=dispute, note="  ")
    settled = services.dispute_reject(
        reviewer=staff_user, dispute_id=dispute, note="The output covers the task."
    )

    assert (settled.status, settled.decision_note) == ("rejected", "The output covers the task.")
    assert Entry.objects.count() == entries
    view = alice.api.get(f"/api/v1/disputes/{dispute}").json()
    assert (view["status"], view["decisionNote"]) == ("rejected", "The output covers the task.")


def test_it_refuses_a_decision_on_a_decided_or_withdrawn_dispute(staff_user, dispute, alice):
    services.dispute_reject(reviewer=staff_user, dispute_id=dispute, note="No.")

    with pytest.raises(DisputeClosed) as raised:
        services.dispute_refund(reviewer=staff_user, dispute_id=dispute)
    assert raised.value.code == "dispute_rejected"
    assert_error(alice.api.post(f"/api/v1/disputes/{dispute}/withdraw"), 409, "dispute_rejected")


def test_it_refuses_staff_without_the_review_permission(dispute, alice):
    looker = get_user_model().objects.create_user("looker", is_staff=True)

    with pytest.raises(NotReviewer):
        services.dispute_refund(reviewer=looker, dispute_id=dispute)

    assert Dispute.objects.get(pk=dispute).status == "filed"
    assert alice.balance().available == 100_000 - 2500


def test_it_refuses_a_refund_once_the_thumbs_down_refunded_everything(
    staff_user, dispute, alice, completed
):
    assert thumbs(alice, completed["id"], "down").json() == {"refunded": True}

    with pytest.raises(TaskAlreadyRefunded):
        services.dispute_refund(reviewer=staff_user, dispute_id=dispute)

    assert Task.objects.get(pk=completed["id"]).credits_refunded == 2500


@pytest.mark.postgres
def test_it_refunds_once_when_two_reviewers_decide_at_the_same_moment(
    postgres, staff_user, dispute, alice
):
    second = get_user_model().objects.create_user("second", is_staff=True, is_superuser=True)

    def decide(user):
        def call():
            try:
                return services.dispute_refund(reviewer=user, dispute_id=dispute).status
            except DisputeClosed as exc:
                return exc.code

        return call

    outcomes = run_together([decide(staff_user), decide(second)])

    assert sorted(outcomes) == ["dispute_refunded", "refunded"]
    assert alice.balance().available == 100_000
    assert Entry.objects.filter(kind="refund").count() == 1
