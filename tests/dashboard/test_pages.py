"""The dashboard's account and task pages, through the test client: what each shows, every form's
success and errors, and another owner's task as a 404."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from city.identity.models import Owner
from tests.actions import run_to_completion, submit
from tests.dashboard.pages import logged_in


def test_the_front_door_asks_a_visitor_to_log_in():
    response = Client().get("/")

    assert (response.status_code, response["Location"]) == (302, "/login/?next=/")


def test_a_logged_in_owner_lands_on_its_tasks(alice):
    response = logged_in(alice).get("/")

    assert (response.status_code, response["Location"]) == (302, "/tasks/")


def test_signing_up_makes_an_owner_and_logs_it_in(db):
    client = Client()
    form = client.get("/signup/")
    response = client.post(
        "/signup/", {"email": "New@Example.com", "password": "a long passphrase 42"}
    )

    assert form.status_code == 200 and b'name="email"' in form.content
    assert (response.status_code, response["Location"]) == (302, "/")
    owner = Owner.objects.get(user__username="new@example.com")
    assert owner.tokens.count() == 1  # an owner token, as create_owner makes
    assert client.get("/tasks/").status_code == 200


@pytest.mark.parametrize(
    ("email", "password", "field", "says"),
    [
        ("alice@example.com", "a long passphrase 42", "email", b"exists: log in instead"),
        ("someone@example.com", "short", "password", b"too short"),
        ("not-an-email", "a long passphrase 42", "email", b"valid email"),
    ],
)
def test_signing_up_shows_each_error_next_to_its_field(alice, email, password, field, says):
    response = Client().post("/signup/", {"email": email, "password": password})

    assert response.status_code == 400
    assert says in response.content
    assert f'id="id_{field}_error"'.encode() in response.content
    assert Owner.objects.count() == 1  # alice only


def test_signing_up_needs_the_csrf_token(db):
    client = Client(enforce_csrf_checks=True)

    response = client.post("/signup/", {"email": "x@example.com", "password": "a long phrase 42"})

    assert response.status_code == 403
    assert not get_user_model().objects.filter(username="x@example.com").exists()


def test_logging_in_and_out(alice):
    client = Client()
    wrong = client.post("/login/", {"username": "alice@example.com", "password": "nope"})
    right = client.post("/login/", {"username": "alice@example.com", "password": "pw"})
    out = client.post("/logout/")

    assert wrong.status_code == 200 and b"correct" in wrong.content
    assert (right.status_code, right["Location"]) == (302, "/")
    assert (out.status_code, out["Location"]) == (302, "/login/")
    assert client.get("/tasks/").status_code == 302


def test_changing_the_password(alice):
    client = logged_in(alice)

    response = client.post(
        "/password/",
        {
            "old_password": "pw",
            "new_password1": "another long phrase 7",
            "new_password2": "another long phrase 7",
        },
    )

    assert (response.status_code, response["Location"]) == (302, "/password/done/")
    assert Client().login(username="alice@example.com", password="another long phrase 7")


def test_a_login_without_an_owner_is_refused(db):
    admin = get_user_model().objects.create_superuser("root", password="pw")
    client = Client()
    client.force_login(admin)

    assert client.get("/tasks/").status_code == 403


def test_the_task_list_shows_my_tasks_newest_first_and_not_anothers(alice, charlie, rex):
    first = submit(alice, agentId=rex.id, input={"description": "first review"})["id"]
    second = submit(alice, agentId=rex.id, input={"description": "second review"})["id"]
    theirs = submit(charlie, agentId=rex.id, input={"description": "charlie's"})["id"]

    page = logged_in(alice).get("/tasks/").content.decode()

    assert second in page and first in page and theirs not in page
    assert page.index(second) < page.index(first)


def test_the_task_list_filters_by_status_and_searches(alice, rex):
    done = submit(alice, agentId=rex.id, input={"description": "lint the parser"})["id"]
    run_to_completion(rex, done)
    waiting = submit(alice, agentId=rex.id, input={"description": "review the lexer"})["id"]
    client = logged_in(alice)

    completed = client.get("/tasks/?status=completed").content.decode()
    searched = client.get("/tasks/?q=LEXER").content.decode()
    bad = client.get("/tasks/?status=bogus")

    assert done in completed and waiting not in completed
    assert waiting in searched and done not in searched
    assert bad.status_code == 400 and b"valid choice" in bad.content


def test_the_task_list_pages_by_25(alice, rex):
    for i in range(27):
        submit(alice, agentId=rex.id, maxBudget=2500, input={"description": f"task {i}"})
    client = logged_in(alice)

    first = client.get("/tasks/").content.decode()
    second = client.get("/tasks/?page=2").content.decode()

    rows = 'class="status status-'  # one per task row
    assert first.count(rows) == 25 and "Page 1 of 2" in first
    assert second.count(rows) == 2 and "task 0<" in second


def test_a_task_page_shows_its_output_money_and_timeline(alice, rex):
    tid = submit(alice, agentId=rex.id)["id"]
    run_to_completion(rex, tid)

    page = logged_in(alice).get(f"/tasks/{tid}/").content.decode()

    assert "Completed" in page and "rex" in page
    assert "line 1" in page and "unused name x" in page  # the finding, as a list item
    assert "<dt>Charged</dt><dd>25.00</dd>" in page  # 2500 cents
    for step in ("submit", "assign", "start", "complete", "pass"):
        assert f"<strong>{step}</strong>" in page


def test_another_owners_task_and_an_unknown_one_are_404(alice, charlie, rex):
    theirs = submit(charlie, agentId=rex.id)["id"]
    client = logged_in(alice)

    assert client.get(f"/tasks/{theirs}/").status_code == 404
    assert client.get("/tasks/nope/").status_code == 404
