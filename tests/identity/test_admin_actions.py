"""The rest of the admin: its login throttled, agents suspended and reactivated, credits
granted through the ledger."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from city.identity.models import Agent
from credits.models import Account, Transaction
from tests.factories import make_owner


@pytest.fixture
def root() -> Client:
    client = Client()
    client.force_login(get_user_model().objects.create_superuser("root", password="pw"))
    return client


def login(username: str, password: str, address: str = "10.0.0.1"):
    return Client(REMOTE_ADDR=address).post(
        "/admin/login/", {"username": username, "password": password, "next": "/admin/"}
    )


def test_it_throttles_failed_admin_logins_per_account(settings, clock, reviewer):
    settings.ADMIN_LOGIN_FAILURES_PER_MINUTE = 3
    for i in range(3):
        assert login("reviewer@example.com", "wrong", f"10.0.0.{i}").status_code == 200

    refused = login("reviewer@example.com", "pw", "10.0.0.9")

    assert refused.status_code == 200
    assert b"Too many failed logins" in refused.content
    assert login("other@example.com", "wrong", "10.0.0.9").status_code == 200  # another account


def test_it_throttles_failed_admin_logins_per_address(settings, clock, reviewer):
    settings.ADMIN_LOGIN_FAILURES_PER_MINUTE = 3
    for name in ("a", "b", "c"):
        login(f"{name}@example.com", "wrong", "10.0.0.7")

    refused = login("reviewer@example.com", "pw", "10.0.0.7")
    elsewhere = login("reviewer@example.com", "pw", "10.0.0.8")

    assert b"Too many failed logins" in refused.content
    assert elsewhere.status_code == 302  # logged in from another address


def test_it_logs_a_reviewer_in_with_the_right_password(reviewer):
    response = login("reviewer@example.com", "pw")

    assert (response.status_code, response["Location"]) == (302, "/admin/")


def test_it_suspends_and_reactivates_agents_from_the_admin(root, rex):
    root.post("/admin/identity/agent/", {"action": "suspend", "_selected_action": [rex.id]})
    assert Agent.objects.get(pk=rex.id).status == "suspended"
    assert rex.api.get("/api/v1/credits").status_code == 403

    root.post("/admin/identity/agent/", {"action": "reactivate", "_selected_action": [rex.id]})
    assert Agent.objects.get(pk=rex.id).status == "active"
    assert rex.api.get("/api/v1/credits").status_code == 200


def test_it_grants_credits_through_the_ledger(root, bob, rex):
    pool = Account.objects.get(owner=bob.owner, kind="pool")
    escrow = Account.objects.get(owner=bob.owner, kind="escrow")
    earnings = Account.objects.get(agent=rex.agent, kind="earnings")

    form = root.post(
        "/admin/credits/account/",
        {"action": "grant", "_selected_action": [pool.pk, earnings.pk, escrow.pk]},
    )
    assert form.status_code == 200 and b"Grant credits" in form.content
    done = root.post(
        "/admin/credits/account/",
        {
            "action": "grant",
            "_selected_action": [pool.pk, earnings.pk, escrow.pk],
            "apply": "1",
            "amount": "750",
            "memo": "welcome",
        },
        follow=True,
    )

    said = [str(m) for m in done.context["messages"]]
    assert "Granted 750 to 2 account(s)." in said
    assert "1 not: only pools and earnings receive grants." in said
    assert (bob.balance().available, rex.balance().available) == (750, 750)
    assert Transaction.objects.filter(kind="grant", memo="welcome").count() == 2


def test_it_offers_reviewers_no_grant(reviewer, bob):
    client = Client()
    client.force_login(reviewer.owner.user)
    pool = Account.objects.get(owner=bob.owner, kind="pool")

    page = client.get("/admin/credits/account/")
    client.post(
        "/admin/credits/account/",
        {"action": "grant", "_selected_action": [pool.pk], "apply": "1", "amount": "750"},
    )

    assert page.status_code == 200 and b'value="grant"' not in page.content
    assert bob.balance().available == 0


def test_it_makes_the_demo_style_reviewer_no_superuser(db):
    reviewer = make_owner("r2@example.com", reviewer=True).owner.user

    assert (reviewer.is_staff, reviewer.is_superuser) == (True, False)
    assert reviewer.has_perm("disputes.review_dispute")
    assert not reviewer.has_perm("credits.grant_credits")
