"""The admin dispute console, driven through the Django test client as reviewers use it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client

from disputes.models import Dispute
from tests.actions import get_task, platform_fees, run_to_completion, submit
from tests.factories import make_owner

QUEUE = "/admin/disputes/dispute/"


def logged_in(person) -> Client:
    client = Client()
    client.force_login(person.owner.user)
    return client


@pytest.fixture
def console(reviewer) -> Client:
    return logged_in(reviewer)


def file(person, tid: str, reason: str = "wrong_output") -> str:
    response = person.api.post(
        f"/api/v1/tasks/{tid}/disputes", {"reason": reason, "description": "Not what I asked."}
    )
    assert response.status_code == 201, response.content
    return response.json()["id"]


@pytest.fixture
def disputes(alice, rex) -> list[str]:
    """Three disputes of alice's on three tasks rex completed, oldest first."""
    ids = []
    for _ in range(3):
        tid = submit(alice, agentId=rex.id)["id"]
        run_to_completion(rex, tid)
        ids.append(file(alice, tid))
    return ids


def act(client: Client, action: str, ids: list[str], **form):
    return client.post(
        QUEUE, {"action": action, "_selected_action": ids, **form}, follow="apply" in form
    )


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


def test_it_lists_open_disputes_first_oldest_deadline_first_marking_the_overdue(console, disputes):
    first, second, third = disputes
    Dispute.objects.filter(pk=first).update(status="rejected")  # closed: last
    Dispute.objects.filter(pk=third).update(
        due_by=Dispute.objects.get(pk=second).due_by - timedelta(days=10)
    )

    page = console.get(QUEUE)

    assert page.status_code == 200
    order = [d.pk for d in page.context["cl"].result_list]
    assert order == [third, second, first]
    assert b"overdue" in page.content  # third's deadline has passed
    for column in (b"task", b"caller", b"agent", b"reason", b"charged", b"age", b"due by"):
        assert column in page.content.lower()


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"status__exact": "filed"}, 3),
        ({"reason__exact": "deadline_missed"}, 0),
        ({"overdue": "yes"}, 0),
        ({"overdue": "no"}, 3),
        ({"q": "alice@example.com"}, 3),
        ({"q": "rex"}, 3),
        ({"q": "nobody"}, 0),
    ],
)
def test_it_filters_and_searches_the_queue(console, disputes, query, expected):
    page = console.get(QUEUE, query)

    assert page.status_code == 200
    assert len(page.context["cl"].result_list) == expected


def test_it_shows_everything_a_reviewer_needs_on_one_page(console, disputes, alice):
    dispute = Dispute.objects.get(pk=disputes[1])

    page = console.get(f"{QUEUE}{dispute.pk}/change/")

    assert page.status_code == 200
    html = page.content.decode()
    assert "Review this snippet" in html  # the task's input
    assert "unused name x" in html  # its output
    assert "substantive" in html  # the quality verdict's reasons
    assert "assign" in html and "pass" in html  # the task's history
    assert "3 tasks delivered" in html  # the agent's record
    assert disputes[0] in html and disputes[2] in html  # the caller's other disputes
    assert 'name="_save"' not in html


def test_it_starts_a_review_assigning_the_reviewer(console, disputes, reviewer):
    response = act(console, "start_review", disputes[:1])

    assert response.status_code == 302
    dispute = Dispute.objects.get(pk=disputes[0])
    assert (dispute.status, dispute.reviewer) == ("under_review", reviewer.owner.user)


def test_it_refunds_in_full_to_the_cent(console, disputes, alice, rex):
    before = alice.balance().available

    act(console, "refund_in_full", disputes[:1])

    dispute = Dispute.objects.get(pk=disputes[0])
    assert (dispute.status, dispute.refunded_amount) == ("refunded", 2500)
    assert alice.balance().available == before + 2500
    assert get_task(alice, dispute.task_id)["status"] == "refunded"
    assert rex.balance().available == 2 * 2250  # the other two charges' payouts
    assert platform_fees() == 2 * 250


def test_it_asks_for_the_amount_of_a_partial_refund_then_refunds_it(console, disputes, alice, rex):
    form = act(console, "refund_in_part", disputes[:1])
    assert form.status_code == 200
    assert b"Still refundable: <strong>2500</strong>" in form.content

    too_much = act(console, "refund_in_part", disputes[:1], apply="1", amount="2501", note="")
    assert b"At most 2500 is still refundable." in too_much.content
    assert Dispute.objects.get(pk=disputes[0]).status == "filed"

    done = act(console, "refund_in_part", disputes[:1], apply="1", amount="1000", note="Half.")

    assert "Refunded 1000 of 1 dispute(s)." in messages_of(done)
    dispute = Dispute.objects.get(pk=disputes[0])
    assert (dispute.status, dispute.refunded_amount, dispute.decision_note) == (
        "partially_refunded",
        1000,
        "Half.",
    )
    # floor(1000 × 250 / 2500) = 100 from the fees, 900 from rex.
    assert platform_fees() == 3 * 250 - 100
    assert rex.balance().available == 3 * 2250 - 900
    owner_view = alice.api.get(f"/api/v1/disputes/{dispute.pk}").json()
    assert (owner_view["status"], owner_view["refundedAmount"]) == ("partially_refunded", 1000)


def test_it_rejects_only_with_a_note(console, disputes):
    without = act(console, "reject", disputes[:2], apply="1", note="")
    assert b"This field is required." in without.content

    done = act(console, "reject", disputes[:2], apply="1", note="Delivered as asked.")

    assert "Rejected 2 dispute(s)." in messages_of(done)
    assert set(Dispute.objects.filter(pk__in=disputes[:2]).values_list("status", flat=True)) == {
        "rejected"
    }


def test_it_reports_how_many_succeeded_and_why_the_others_did_not(console, disputes, alice):
    act(console, "reject", disputes[:1], apply="1", note="No.")

    response = console.post(
        QUEUE, {"action": "refund_in_full", "_selected_action": disputes}, follow=True
    )

    said = messages_of(response)
    assert "Refunded in full 2 dispute(s)." in said
    assert any(m.startswith(f"1 not: {disputes[0]}: Cannot refund") for m in said)
    assert alice.balance().available == 100_000 - 2500


def test_it_lets_staff_without_the_permission_look_but_not_act(disputes, alice):
    looker = logged_in(make_owner("looker@example.com", staff=True))

    page = looker.get(QUEUE)
    response = act(looker, "refund_in_full", disputes[:1])

    assert page.status_code == 200
    assert b"refund_in_full" not in page.content
    assert response.status_code in (200, 302)
    assert Dispute.objects.get(pk=disputes[0]).status == "filed"
    assert alice.balance().available == 100_000 - 3 * 2500


def test_it_keeps_owners_out_of_the_console(disputes, alice):
    owner = logged_in(alice)

    assert owner.get(QUEUE).status_code == 302
    act(owner, "refund_in_full", disputes[:1])
    assert Dispute.objects.get(pk=disputes[0]).status == "filed"
