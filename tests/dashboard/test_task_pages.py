"""The dashboard's task actions through the test client: submitting (the agent directory, errors
next to their fields, too little credit), cancelling, thumbs up and down with the refund window,
and the live parts of the pages. Money is checked in the ledger, not on the page alone."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from credits.services import grant_issue
from tasks.models import Task, TaskEvent
from tests.actions import get_task, run_to_completion, start, sub_hire, submit
from tests.dashboard.pages import logged_in
from tests.factories import make_owner

FORM = {
    "task_type": "code_review",
    "description": "Review my parser",
    "repo": "",
    "code": "def parse(s):\n    return s\n",
    "max_budget": "30",
    "agent": "",
}


def form(**changes) -> dict:
    return {**FORM, **changes}


# The form and the agent directory


def test_the_form_offers_the_task_types_agents_offer_and_their_directory(alice, rex, zed):
    response = logged_in(alice).get("/tasks/new/?task_type=code_review")
    page = response.content.decode()

    assert response.status_code == 200
    assert '<option value="bug_fix"' in page and '<option value="code_review"' in page
    # code_review's directory, cheapest first, each with its price for the type.
    assert page.index(f'value="{rex.id}"') < page.index(f'value="{zed.id}"')
    assert "<td>25.00</td>" in page and "<td>30.00</td>" in page
    assert "You have 1,000.00 credits available" in page


def test_picking_a_task_type_reloads_only_the_directory(alice, rex, zed):
    response = logged_in(alice).get("/tasks/new/?task_type=bug_fix", headers={"HX-Request": "true"})
    page = response.content.decode()

    assert response.status_code == 200
    assert page.startswith('<fieldset id="agent-directory"')
    assert rex.id in page and zed.id not in page  # zed takes no bug_fix
    assert "<td>40.00</td>" in page


def test_the_directory_shows_an_agents_rating_and_completed_tasks(alice, rex):
    tid = submit(alice, agentId=rex.id)["id"]
    run_to_completion(rex, tid)
    logged_in(alice).post(f"/tasks/{tid}/feedback/", {"feedback": "up"})

    page = logged_in(alice).get("/tasks/new/?task_type=code_review").content.decode()

    assert "100% thumbs up" in page
    assert "<td>1</td>" in page  # completed


def test_submitting_with_smart_routing_holds_the_budget_and_opens_the_task(alice, rex):
    client = logged_in(alice)
    response = client.post("/tasks/new/", form())

    task = Task.objects.get()
    assert (response.status_code, response["Location"]) == (302, f"/tasks/{task.pk}/")
    assert task.caller_owner_id == alice.owner.pk and not task.direct_hire
    assert task.input == {"description": "Review my parser", "code": FORM["code"]}
    assert task.max_budget == 3000  # cents: 30 credits
    assert task.agent_id == rex.id  # routed after the commit: rex is the only code reviewer
    assert alice.balance().available == 100_000 - 3000
    assert alice.balance().held == 3000
    assert f"Task {task.pk} submitted." in client.get(response["Location"]).content.decode()


def test_submitting_to_an_agent_from_the_directory_hires_it(alice, rex, zed):
    response = logged_in(alice).post("/tasks/new/", form(agent=zed.id, max_budget="30"))

    task = Task.objects.get()
    assert response.status_code == 302
    assert (task.agent_id, task.direct_hire, task.price) == (zed.id, True, 3000)


def test_attached_files_become_the_inputs_files(alice, rex):
    upload = SimpleUploadedFile("app.py", b"print('hi')\n", content_type="text/x-python")
    response = logged_in(alice).post("/tasks/new/", {**form(), "files": [upload]})

    assert response.status_code == 302
    assert Task.objects.get().input["files"] == [{"name": "app.py", "content": "print('hi')\n"}]


def test_too_little_credit_says_what_is_missing_next_to_the_budget(alice, rex):
    poor = make_owner("poor@example.com", credits=1000)
    response = logged_in(poor).post("/tasks/new/", form(max_budget="30"))
    page = response.content.decode()

    assert response.status_code == 400
    assert 'id="id_max_budget_error"' in page
    assert "You have 10.00 credits available: 20.00 more are needed for this budget." in page
    assert not Task.objects.exists()
    assert (poor.balance().available, poor.balance().held) == (1000, 0)


@pytest.mark.parametrize(
    ("changes", "field", "says"),
    [
        ({"description": "  "}, "description", "This field is required."),
        ({"max_budget": "0"}, "max_budget", "greater than or equal to 0.01"),
        ({"max_budget": "1.234"}, "max_budget", "more than 2 decimal places"),
        ({"max_budget": "lots"}, "max_budget", "Enter a number."),
        ({"task_type": "poetry"}, "task_type", "Select a valid choice."),
        ({"agent": "agt_nobody"}, "agent", "Select a valid choice."),
    ],
)
def test_each_invalid_field_is_said_next_to_it(alice, rex, changes, field, says):
    response = logged_in(alice).post("/tasks/new/", form(**changes))
    page = response.content.decode()

    assert response.status_code == 400
    assert f'id="id_{field}_error"' in page
    assert says in page
    assert not Task.objects.exists()
    assert alice.balance().held == 0


def test_a_hired_agent_dearer_than_the_budget_is_refused_next_to_the_agent(alice, rex):
    response = logged_in(alice).post("/tasks/new/", form(agent=rex.id, max_budget="20"))
    page = response.content.decode()

    assert response.status_code == 400
    assert 'id="id_agent_error"' in page and "rex charges 25.00 credits" in page
    assert not Task.objects.exists()


def test_a_binary_file_is_refused_next_to_the_files(alice, rex):
    upload = SimpleUploadedFile("logo.png", b"\x89PNG\r\n\x1a\n\xff\xfe")
    response = logged_in(alice).post("/tasks/new/", {**form(), "files": [upload]})

    assert response.status_code == 400
    assert (
        b'id="id_files_error"' in response.content and b"not a UTF-8 text file" in response.content
    )
    assert not Task.objects.exists()


def test_with_no_agent_at_work_there_is_nothing_to_submit(alice):
    page = logged_in(alice).get("/tasks/new/").content.decode()

    assert "No agent offers any work yet" in page and 'name="max_budget"' not in page


def test_submitting_needs_the_csrf_token(alice, rex):
    response = logged_in(alice, csrf=True).post("/tasks/new/", form())

    assert response.status_code == 403
    assert not Task.objects.exists()


# Cancelling


def test_cancelling_a_task_nobody_started_returns_the_whole_hold(alice, submitted):
    client = logged_in(alice)
    before = client.get(f"/tasks/{submitted['id']}/").content.decode()
    response = client.post(f"/tasks/{submitted['id']}/cancel/")

    assert 'action="/tasks/' + submitted["id"] + '/cancel/"' in before
    assert (response.status_code, response["Location"]) == (302, f"/tasks/{submitted['id']}/")
    task = Task.objects.get(pk=submitted["id"])
    assert (task.status, task.failure_reason) == ("failed", "cancelled")
    assert (alice.balance().available, alice.balance().held) == (100_000, 0)
    after = client.get(f"/tasks/{submitted['id']}/").content.decode()
    assert "Task cancelled" in after and "/cancel/" not in after


def test_a_started_task_cannot_be_cancelled_and_the_page_says_why(alice, executing):
    client = logged_in(alice)
    page = client.get(f"/tasks/{executing['id']}/").content.decode()
    response = client.post(f"/tasks/{executing['id']}/cancel/", follow=True)

    assert "/cancel/" not in page
    assert response.status_code == 200
    assert Task.objects.get(pk=executing["id"]).status == "executing"
    assert alice.balance().held == 5000
    assert "executing" in response.content.decode()  # the service's refusal, as a message


def test_another_owners_task_cannot_be_cancelled(alice, charlie, submitted):
    response = logged_in(charlie).post(f"/tasks/{submitted['id']}/cancel/")

    assert response.status_code == 404
    assert Task.objects.get(pk=submitted["id"]).status == "submitted"


def test_cancel_and_feedback_are_posts(alice, submitted):
    client = logged_in(alice)

    assert client.get(f"/tasks/{submitted['id']}/cancel/").status_code == 405
    assert client.get(f"/tasks/{submitted['id']}/feedback/").status_code == 405
    assert logged_in(alice, csrf=True).post(f"/tasks/{submitted['id']}/cancel/").status_code == 403
    assert Task.objects.get(pk=submitted["id"]).status == "submitted"


# Thumbs up and down


def test_a_thumbs_down_in_the_window_refunds_the_charge(alice, rex, completed):
    client = logged_in(alice)
    page = client.get(f"/tasks/{completed['id']}/").content.decode()
    response = client.post(f"/tasks/{completed['id']}/feedback/", {"feedback": "down"}, follow=True)

    assert re.search(r'data-countdown="(600|599)"', page)
    assert re.search(r'class="countdown">(10:00|9:59)</time>', page)  # before any script runs
    assert 'value="down"' in page
    assert "Refunded 25.00 credits." in response.content.decode()
    assert (alice.balance().available, alice.balance().held) == (100_000, 0)
    assert rex.balance().available == 0
    assert get_task(alice, completed["id"])["status"] == "refunded"


def test_after_the_window_a_thumbs_down_refunds_nothing_and_no_countdown_shows(alice, completed):
    client = logged_in(alice)
    with time_machine.travel(timezone.now() + timedelta(minutes=11)):
        page = client.get(f"/tasks/{completed['id']}/").content.decode()
        response = client.post(
            f"/tasks/{completed['id']}/feedback/", {"feedback": "down"}, follow=True
        )

    assert "data-countdown" not in page and 'value="down"' in page
    assert "Thanks for your feedback." in response.content.decode()
    assert alice.balance().available == 100_000 - 2500
    assert Task.objects.get(pk=completed["id"]).feedback == "down"


def test_feedback_is_given_once(alice, completed):
    client = logged_in(alice)
    client.post(f"/tasks/{completed['id']}/feedback/", {"feedback": "up"})
    page = client.get(f"/tasks/{completed['id']}/").content.decode()
    again = client.post(f"/tasks/{completed['id']}/feedback/", {"feedback": "down"}, follow=True)

    assert "<dd>thumbs up</dd>" in page and 'value="down"' not in page
    assert "already" in again.content.decode()
    assert Task.objects.get(pk=completed["id"]).feedback == "up"
    assert alice.balance().available == 100_000 - 2500


def test_feedback_must_be_up_or_down(alice, completed):
    response = logged_in(alice).post(f"/tasks/{completed['id']}/feedback/", {"feedback": "meh"})

    assert response.status_code == 302
    assert Task.objects.get(pk=completed["id"]).feedback == ""


def test_another_owner_gives_no_feedback(alice, charlie, completed):
    response = logged_in(charlie).post(f"/tasks/{completed['id']}/feedback/", {"feedback": "down"})

    assert response.status_code == 404
    assert alice.balance().available == 100_000 - 2500


# What the task page shows


def test_the_page_follows_the_tasks_stream(alice, submitted):
    page = logged_in(alice).get(f"/tasks/{submitted['id']}/").content.decode()
    last = TaskEvent.objects.filter(task_id=submitted["id"]).latest("pk").pk

    # From the last event shown: an event recorded before the stream opens is replayed.
    assert f'sse-connect="/api/v1/tasks/{submitted["id"]}/stream?lastEventId={last}"' in page
    assert 'id="live"' in page and "sse:status" in page
    assert "{#" not in page and "{%" not in page  # no template syntax leaks onto the page


def test_the_list_follows_the_owners_stream(alice, submitted):
    page = logged_in(alice).get("/tasks/").content.decode()
    last = TaskEvent.objects.latest("pk").pk

    assert (
        f'sse-connect="/api/v1/stream?lastEventId={last}"' in page and 'hx-select="#rows"' in page
    )
    assert f'data-task="{submitted["id"]}"' in page
    assert "{#" not in page and "{%" not in page


def test_the_page_shows_the_sandbox_and_the_sub_tasks_hired_for_it(alice, rex, zed, executing):
    grant_issue(agent=rex.agent, amount=3000)
    sub = sub_hire(rex, agentId=zed.id, parentTaskId=executing["id"], maxBudget=3000)
    start(zed, sub["id"])

    page = logged_in(alice).get(f"/tasks/{executing['id']}/").content.decode()

    assert executing["sandboxId"] in page
    assert "Sub-tasks" in page and sub["id"] in page and "zed" in page
    assert f'href="/tasks/{sub["id"]}/"' not in page  # rex's task, not alice's to open
    assert logged_in(alice).get(f"/tasks/{sub['id']}/").status_code == 404
