"""The admin serves staff every model's list and detail; the ledger in it is read-only."""

from __future__ import annotations

import pytest
from django.test import Client

from credits.models import Account, Entry, Hold, Transaction
from tasks.models import Sandbox, Task


@pytest.fixture
def staff(reviewer) -> Client:
    client = Client()
    client.force_login(reviewer.owner.user)
    return client


@pytest.mark.parametrize(
    "model",
    [
        "identity/owner",
        "identity/agent",
        "identity/apisecret",
        "credits/account",
        "credits/transaction",
        "credits/hold",
        "tasks/task",
        "tasks/sandbox",
    ],
)
def test_it_lists_each_model_for_staff(staff, completed, model):
    response = staff.get(f"/admin/{model}/")
    assert response.status_code == 200


def test_it_shows_a_task_with_its_events(staff, completed):
    response = staff.get(f"/admin/tasks/task/{completed['id']}/change/")
    assert response.status_code == 200
    assert b"pass" in response.content and b"complete" in response.content


def test_it_offers_no_way_to_change_the_ledger(staff, completed):
    txn = Transaction.objects.first()
    assert staff.get("/admin/credits/transaction/add/").status_code == 403
    assert (
        staff.post(f"/admin/credits/transaction/{txn.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    assert Transaction.objects.filter(pk=txn.pk).exists()
    assert Entry.objects.count() and Account.objects.count() and Hold.objects.count()


def test_it_revokes_a_secret_from_the_admin(alice):
    from django.contrib.auth import get_user_model

    from city.identity.models import ApiSecret

    admin_user = get_user_model().objects.create_superuser("root", password="pw")
    client = Client()
    client.force_login(admin_user)
    secret = ApiSecret.objects.get(owner=alice.owner)
    response = client.post(
        "/admin/identity/apisecret/", {"action": "revoke", "_selected_action": [secret.pk]}
    )
    assert response.status_code == 302
    assert alice.api.get("/api/v1/credits").status_code == 401


def test_it_offers_a_reviewer_no_way_to_revoke_secrets(staff, alice):
    from city.identity.models import ApiSecret

    secret = ApiSecret.objects.get(owner=alice.owner)
    staff.post("/admin/identity/apisecret/", {"action": "revoke", "_selected_action": [secret.pk]})

    assert alice.api.get("/api/v1/credits").status_code == 200


def test_it_keeps_the_admin_from_non_staff(alice):
    client = Client()
    client.force_login(alice.owner.user)
    assert client.get("/admin/tasks/task/").status_code == 302


def test_it_never_shows_a_secret_hash(staff, alice):
    from city.identity.models import ApiSecret

    secret = ApiSecret.objects.get(owner=alice.owner)
    page = staff.get(f"/admin/identity/apisecret/{secret.pk}/change/").content.decode()
    assert secret.secret_hash not in page


def test_it_lets_staff_add_no_task_or_sandbox(staff, submitted):
    assert staff.get("/admin/tasks/task/add/").status_code == 403
    assert staff.get("/admin/tasks/sandbox/add/").status_code == 403
    assert Task.objects.count() == 1 and Sandbox.objects.count() == 0
