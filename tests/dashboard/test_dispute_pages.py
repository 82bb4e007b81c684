"""The dispute panel of a task's page, and its forms, through the test client: filing after the
thumbs-down window, errors next to their field, the services' refusals, a reviewer's decision as
the owner sees it, withdrawing, and another owner's task or dispute as a 404."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import pytest
import time_machine
from django.conf import settings
from django.db import connection
from django.template import engines
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext

from city.identity.principals import Principal
from disputes import services
from disputes.models import Dispute
from tasks.models import Task
from tests.actions import submit, thumbs
from tests.dashboard.pages import logged_in

FORM = {"reason": "wrong_output", "description": "It reviewed another file."}
OFFERED = 'action="/tasks/{tid}/dispute/"'  # the filing form, on the task's page


def thumbs_deadline(tid: str):
    return Task.objects.get(pk=tid).feedback_refund_deadline


def window_closes(tid: str):
    return Task.objects.get(pk=tid).completed_at + timedelta(days=settings.DISPUTE_WINDOW_DAYS)


def after_thumbs(tid: str):
    """The clock moved just past the thumbs-down's refund window, and ticking from there."""
    return time_machine.travel(thumbs_deadline(tid) + timedelta(seconds=1))


def page(client: Client, tid: str) -> str:
    response = client.get(f"/tasks/{tid}/")
    assert response.status_code == 200
    return unescape(response.content.decode())


def file_dispute(client: Client, tid: str, **fields):
    return client.post(f"/tasks/{tid}/dispute/", {**FORM, **fields})


def filed(person, tid: str, later: timedelta = timedelta(0)) -> Dispute:
    """A dispute on the task, filed through the service ``later`` than just after the
    thumbs-down window."""
    with time_machine.travel(thumbs_deadline(tid) + timedelta(seconds=1) + later):
        return services.dispute_file(principal=Principal(owner=person.owner), task_id=tid, **FORM)


def followed(client: Client, response) -> str:
    """The page a redirect leads to, with its messages."""
    assert response.status_code == 302, response.content
    return unescape(client.get(response["Location"]).content.decode())


# The panel


def test_it_offers_the_thumbs_down_not_a_dispute_inside_the_thumbs_window(alice, completed):
    tid = completed["id"]
    client = logged_in(alice)
    deadline = thumbs_deadline(tid)

    with time_machine.travel(deadline - timedelta(seconds=1), tick=False):
        inside = page(client, tid)
    with time_machine.travel(deadline, tick=False):
        after = page(client, tid)

    assert OFFERED.format(tid=tid) not in inside
    assert "A thumbs-down refunds in full until <time" in inside
    assert f">{deadline:%H:%M}</time>; after that you can file a dispute." in inside
    assert OFFERED.format(tid=tid) in after
    assert '<label for="dispute-reason">' in after and '<select name="reason"' in after
    assert '<label for="dispute-description">' in after and '<textarea name="description"' in after
    assert 'value="misrepresentation"' in after  # every reason of the contract
    assert "A thumbs-down refunds in full" not in after


def test_it_offers_no_dispute_after_the_dispute_window(alice, completed):
    tid = completed["id"]

    with time_machine.travel(window_closes(tid) - timedelta(seconds=1), tick=False):
        last_second = page(logged_in(alice), tid)  # a fresh login: the clock is weeks ahead
    with time_machine.travel(window_closes(tid), tick=False):
        closed = page(logged_in(alice), tid)

    assert OFFERED.format(tid=tid) in last_second
    assert OFFERED.format(tid=tid) not in closed
    assert "Disputes could be filed until" in closed


def test_it_offers_no_dispute_on_a_task_refunded_in_full_or_not_completed(alice, rex, completed):
    assert thumbs(alice, completed["id"], "down").json() == {"refunded": True}
    waiting = submit(alice, agentId=rex.id)["id"]
    client = logged_in(alice)

    with after_thumbs(completed["id"]):
        refunded, submitted = page(client, completed["id"]), page(client, waiting)

    assert OFFERED.format(tid=completed["id"]) not in refunded
    assert 'id="disputes-heading"' not in refunded and 'id="disputes-heading"' not in submitted


# Filing


def test_it_files_a_dispute_and_goes_back_to_the_task(alice, completed):
    tid = completed["id"]
    client = logged_in(alice)

    with after_thumbs(tid):
        response = file_dispute(
            client, tid, reason="incomplete_delivery", description="  Half the files.  "
        )
        after = followed(client, response)

    assert response["Location"] == f"/tasks/{tid}/"
    dispute = Dispute.objects.get()
    assert (dispute.task_id, dispute.caller_owner, dispute.status) == (tid, alice.owner, "filed")
    assert (dispute.reason, dispute.description) == ("incomplete_delivery", "Half the files.")
    assert f"Dispute {dispute.pk} filed" in after
    assert "Incomplete delivery" in after and "Half the files." in after
    assert f'action="/disputes/{dispute.pk}/withdraw/"' in after
    assert OFFERED.format(tid=tid) not in after  # one open at a time


@pytest.mark.parametrize(
    ("fields", "field", "says"),
    [
        ({"description": "   "}, "description", "This field is required."),
        ({"reason": "meh"}, "reason", "Select a valid choice."),
        ({"reason": ""}, "reason", "This field is required."),
        ({"description": "x" * 10_001}, "description", "at most 10000 characters"),
    ],
)
def test_it_shows_each_error_next_to_its_field_and_files_nothing(
    alice, completed, fields, field, says
):
    tid = completed["id"]

    with after_thumbs(tid):
        response = file_dispute(logged_in(alice), tid, **fields)

    content = unescape(response.content.decode())
    assert response.status_code == 400
    error = re.search(
        rf'<span class="error" id="dispute-{field}_error"[^>]*>([^<]*)</span>', content
    )
    assert error is not None and says in error.group(1), content
    assert f'href="/tasks/{tid}/"' in content  # the way back
    assert not Dispute.objects.exists()


def test_it_accepts_the_longest_description_the_api_accepts(alice, completed):
    with after_thumbs(completed["id"]):
        response = file_dispute(logged_in(alice), completed["id"], description="x" * 10_000)

    assert response.status_code == 302
    assert len(Dispute.objects.get().description) == 10_000


def test_it_refuses_a_second_dispute_while_one_is_open(alice, completed):
    first = filed(alice, completed["id"])

    with after_thumbs(completed["id"]):
        response = file_dispute(logged_in(alice), completed["id"])

    content = unescape(response.content.decode())
    assert response.status_code == 409
    assert f"This task already has an open dispute: {first.pk}." in content
    assert '<div class="errors" role="alert">' in content
    assert Dispute.objects.count() == 1


def test_it_refuses_a_dispute_after_the_window(alice, completed):
    with time_machine.travel(window_closes(completed["id"])):
        response = file_dispute(logged_in(alice), completed["id"])

    assert response.status_code == 409
    assert b"Disputes may be filed within 30 days of completion" in response.content
    assert not Dispute.objects.exists()


def test_it_refuses_a_task_refunded_in_full_and_one_not_completed(alice, rex, completed):
    thumbs(alice, completed["id"], "down")
    waiting = submit(alice, agentId=rex.id)["id"]
    client = logged_in(alice)

    refunded = file_dispute(client, completed["id"])
    submitted = file_dispute(client, waiting)

    assert (refunded.status_code, submitted.status_code) == (409, 409)
    assert b"already refunded in full" in refunded.content
    assert b"Cannot dispute a task in status submitted." in submitted.content
    assert not Dispute.objects.exists()


# A reviewer's decision, as the owner sees it


@pytest.mark.parametrize(
    ("decide", "says", "task_status"),
    [
        (
            lambda user, did: services.dispute_refund(
                reviewer=user, dispute_id=did, amount=1000, note="The findings missed the bug."
            ),
            "Partially refunded: 10.00 credits back",
            "completed",
        ),
        (
            lambda user, did: services.dispute_refund(
                reviewer=user, dispute_id=did, note="The findings missed the bug."
            ),
            "Refunded in full: 25.00 credits back",
            "refunded",
        ),
        (
            lambda user, did: services.dispute_reject(
                reviewer=user, dispute_id=did, note="The findings missed the bug."
            ),
            "Rejected: no refund",
            "completed",
        ),
    ],
    ids=["partial", "full", "rejected"],
)
def test_it_shows_the_reviewers_decision_and_note(
    alice, reviewer, completed, decide, says, task_status
):
    dispute = filed(alice, completed["id"])
    decide(reviewer.owner.user, dispute.pk)

    with after_thumbs(completed["id"]):
        shown = page(logged_in(alice), completed["id"])

    assert Task.objects.get(pk=completed["id"]).status == task_status
    assert says in shown
    assert "<dt>Reviewer's note</dt><dd>The findings missed the bug.</dd>" in shown
    assert "<dt>Decided</dt>" in shown
    assert f'action="/disputes/{dispute.pk}/withdraw/"' not in shown


def test_it_lists_the_tasks_disputes_newest_first(alice, completed):
    first = filed(alice, completed["id"])
    services.dispute_withdraw(principal=Principal(owner=alice.owner), dispute_id=first.pk)
    second = filed(alice, completed["id"], later=timedelta(minutes=1))

    with after_thumbs(completed["id"]):
        shown = page(logged_in(alice), completed["id"])

    assert shown.index(f'id="{second.pk}"') < shown.index(f'id="{first.pk}"')
    assert "Withdrawn by you" in shown


# Withdrawing


def test_it_withdraws_an_open_dispute(alice, completed):
    dispute = filed(alice, completed["id"])
    client = logged_in(alice)

    with after_thumbs(completed["id"]):
        response = client.post(f"/disputes/{dispute.pk}/withdraw/")
        after = followed(client, response)

    assert response["Location"] == f"/tasks/{completed['id']}/"
    dispute.refresh_from_db()
    assert (dispute.status, dispute.resolved_at is not None) == ("withdrawn", True)
    assert f"Dispute {dispute.pk} withdrawn." in after
    assert OFFERED.format(tid=completed["id"]) in after  # a new one may be filed


def test_it_refuses_to_withdraw_a_decided_dispute(alice, reviewer, completed):
    dispute = filed(alice, completed["id"])
    services.dispute_reject(reviewer=reviewer.owner.user, dispute_id=dispute.pk, note="Fine.")
    client = logged_in(alice)

    response = client.post(f"/disputes/{dispute.pk}/withdraw/")

    assert response["Location"] == f"/tasks/{completed['id']}/"
    assert "Cannot withdraw a dispute in status rejected." in followed(client, response)
    assert Dispute.objects.get().status == "rejected"


# Who may


def test_another_owner_gets_404_and_never_sees_the_panel(alice, charlie, completed):
    dispute = filed(alice, completed["id"])
    client = logged_in(charlie)

    with after_thumbs(completed["id"]):
        task_page = client.get(f"/tasks/{completed['id']}/")
        valid = file_dispute(client, completed["id"])
        invalid = file_dispute(client, completed["id"], description="")
        withdraw = client.post(f"/disputes/{dispute.pk}/withdraw/")
        unknown = client.post("/disputes/dsp_nope/withdraw/")
        panel = _render_panel(charlie, Task.objects.get(pk=completed["id"]))

    assert [r.status_code for r in (task_page, valid, invalid, withdraw, unknown)] == [404] * 5
    assert panel.strip() == ""
    assert list(Dispute.objects.values_list("status", flat=True)) == ["filed"]


def test_the_forms_need_the_csrf_token(alice, completed):
    dispute = filed(alice, completed["id"])
    client = logged_in(alice, csrf=True)

    refused_withdraw = client.post(f"/disputes/{dispute.pk}/withdraw/")
    with after_thumbs(completed["id"]):
        withdraw_token = _csrf_token(
            page(client, completed["id"]), f"/disputes/{dispute.pk}/withdraw/"
        )
        withdrawn = client.post(
            f"/disputes/{dispute.pk}/withdraw/", {"csrfmiddlewaretoken": withdraw_token}
        )
        refused_file = file_dispute(client, completed["id"])
        file_token = _csrf_token(
            page(client, completed["id"]), f"/tasks/{completed['id']}/dispute/"
        )
        accepted = file_dispute(client, completed["id"], csrfmiddlewaretoken=file_token)

    assert (refused_withdraw.status_code, refused_file.status_code) == (403, 403)
    assert (withdrawn.status_code, accepted.status_code) == (302, 302)
    assert sorted(Dispute.objects.values_list("status", flat=True)) == ["filed", "withdrawn"]


def test_the_forms_take_only_posts(alice, completed):
    dispute = filed(alice, completed["id"])
    client = logged_in(alice)

    assert client.get(f"/tasks/{completed['id']}/dispute/").status_code == 405
    assert client.get(f"/disputes/{dispute.pk}/withdraw/").status_code == 405
    assert Dispute.objects.get().status == "filed"


def test_a_visitor_is_sent_to_log_in(completed):
    response = Client().post(f"/tasks/{completed['id']}/dispute/", FORM)

    assert (response.status_code, response["Location"]) == (
        302,
        f"/login/?next=/tasks/{completed['id']}/dispute/",
    )
    assert not Dispute.objects.exists()


# Queries


def test_the_panel_reads_the_disputes_in_one_query(alice, reviewer, completed):
    first = filed(alice, completed["id"])
    services.dispute_reject(reviewer=reviewer.owner.user, dispute_id=first.pk, note="No.")
    filed(alice, completed["id"])
    task = Task.objects.get(pk=completed["id"])

    with CaptureQueriesContext(connection) as queries:
        panel = _render_panel(alice, task)

    assert panel.count('class="card dispute"') == 2
    assert len(queries) == 1


def test_the_panel_reads_nothing_for_a_task_that_never_completed(alice, submitted):
    task = Task.objects.get(pk=submitted["id"])

    with CaptureQueriesContext(connection) as queries:
        panel = _render_panel(alice, task)

    assert (panel.strip(), len(queries)) == ("", 0)


def test_the_task_page_with_disputes_stays_within_its_queries(
    alice, reviewer, completed, django_assert_max_num_queries
):
    first = filed(alice, completed["id"])
    services.dispute_refund(reviewer=reviewer.owner.user, dispute_id=first.pk, amount=500)
    filed(alice, completed["id"])
    client = logged_in(alice)
    page(client, completed["id"])  # the session's first read is behind us

    # Session, user, owner, task, agent, events, subtasks, sandboxes: eight before the panel,
    # which adds one.
    with django_assert_max_num_queries(9):
        shown = page(client, completed["id"])

    assert shown.count('class="card dispute"') == 2


# Helpers


def _render_panel(person, task) -> str:
    request = RequestFactory().get(f"/tasks/{task.pk}/")
    request.user = person.owner.user
    request.user.owner  # noqa: B018 - as owner_required leaves it: loaded
    template = engines["django"].from_string(
        "{% load dashboard_disputes %}{% dispute_panel task %}"
    )
    return template.render({"task": task}, request)


def _csrf_token(html: str, action: str) -> str:
    """The CSRF token inside the page's form that posts to ``action``."""
    form = re.search(rf'action="{re.escape(action)}".*?</form>', html, re.DOTALL)
    assert form is not None, html
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.group(0))
    assert found is not None, form.group(0)
    return found.group(1)
