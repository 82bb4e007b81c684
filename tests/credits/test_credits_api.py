"""GET /api/v1/credits and GET /api/v1/credits/entries, for owners and agents."""

from __future__ import annotations

from datetime import datetime
from itertools import pairwise

from credits.services import grant_issue
from tests.actions import fail, run_to_completion, sub_hire, submit, thumbs


def credits_of(principal) -> dict:
    response = principal.api.get("/api/v1/credits")
    assert response.status_code == 200, response.content
    return response.json()


def entries_of(principal, **params) -> list[dict]:
    response = principal.api.get("/api/v1/credits/entries", params)
    assert response.status_code == 200, response.content
    return response.json()["data"]


def rows(entries: list[dict]) -> list[tuple]:
    return [(e["kind"], e["amount"], e["taskId"], e["balanceAfter"]) for e in entries]


# GET /credits


def test_it_shows_an_owner_balance_through_a_task_life(alice, rex):
    assert credits_of(alice) == {"available": 100_000, "held": 0, "total": 100_000}

    task = submit(alice, agentId=rex.id, maxBudget=5000)
    assert credits_of(alice) == {"available": 95_000, "held": 5000, "total": 100_000}

    run_to_completion(rex, task["id"])
    assert credits_of(alice) == {"available": 97_500, "held": 0, "total": 97_500}

    assert thumbs(alice, task["id"], "down").json() == {"refunded": True}
    assert credits_of(alice) == {"available": 100_000, "held": 0, "total": 100_000}


def test_it_gives_the_whole_hold_back_when_a_task_fails(alice, rex, submitted):
    fail(rex, submitted["id"], "timeout")
    assert credits_of(alice) == {"available": 100_000, "held": 0, "total": 100_000}


def test_it_shows_an_agent_earnings_through_a_task_life(alice, rex, submitted):
    assert credits_of(rex) == {"available": 0, "held": 0, "total": 0}

    run_to_completion(rex, submitted["id"])
    assert credits_of(rex) == {"available": 2250, "held": 0, "total": 2250}

    assert thumbs(alice, submitted["id"], "down").json() == {"refunded": True}
    assert credits_of(rex) == {"available": 0, "held": 0, "total": 0}


def test_it_shows_what_a_sub_hiring_agent_holds_and_pays(rex, zed):
    grant_issue(agent=rex.agent, amount=10_000)
    task = sub_hire(rex, agentId=zed.id, maxBudget=5000)
    assert credits_of(rex) == {"available": 5000, "held": 5000, "total": 10_000}

    run_to_completion(zed, task["id"])

    assert credits_of(rex) == {"available": 7000, "held": 0, "total": 7000}
    assert credits_of(zed) == {"available": 2700, "held": 0, "total": 2700}


def test_it_lists_an_owner_entries_newest_first_after_a_completed_task(alice, completed):
    response = alice.api.get("/api/v1/credits/entries")

    assert response.status_code == 200
    body = response.json()
    assert body["pagination"] == {"page": 1, "pageSize": 20, "total": 4, "totalPages": 1}
    for entry in body["data"]:
        assert set(entry) == {"id", "amount", "kind", "taskId", "balanceAfter", "createdAt"}
        datetime.fromisoformat(entry["createdAt"])
    tid = completed["id"]
    assert rows(body["data"]) == [
        ("charge", -2500, tid, 97_500),
        ("release", 5000, tid, 100_000),
        ("hold", -5000, tid, 95_000),
        ("grant", 100_000, None, 100_000),
    ]
    entry_ids = [e["id"] for e in body["data"]]
    assert entry_ids == sorted(entry_ids, reverse=True)


def test_it_lists_the_refund_after_a_thumbs_down(alice, rex, completed):
    assert thumbs(alice, completed["id"], "down").json() == {"refunded": True}

    assert rows(entries_of(alice)[:2]) == [
        ("refund", 2500, completed["id"], 100_000),
        ("charge", -2500, completed["id"], 97_500),
    ]
    assert rows(entries_of(rex)) == [
        ("clawback", -2250, completed["id"], 0),
        ("payout", 2250, completed["id"], 2250),
    ]


def test_it_lists_a_sub_hiring_agent_hold_on_its_earnings(rex, zed):
    grant_issue(agent=rex.agent, amount=10_000)
    task = sub_hire(rex, agentId=zed.id)

    assert rows(entries_of(rex)) == [
        ("hold", -5000, task["id"], 5000),
        ("grant", 10_000, None, 10_000),
    ]
    assert entries_of(zed) == []


def test_it_lists_the_release_of_a_failed_task(alice, rex, submitted):
    fail(rex, submitted["id"])

    assert rows(entries_of(alice)) == [
        ("release", 5000, submitted["id"], 100_000),
        ("hold", -5000, submitted["id"], 95_000),
        ("grant", 100_000, None, 100_000),
    ]


def test_it_pages_the_entries(alice, completed):
    first = alice.api.get("/api/v1/credits/entries", {"pageSize": 3})
    second = alice.api.get("/api/v1/credits/entries", {"page": 2, "pageSize": 3})
    past = alice.api.get("/api/v1/credits/entries", {"page": 3, "pageSize": 3})

    assert [e["kind"] for e in first.json()["data"]] == ["charge", "release", "hold"]
    assert [e["kind"] for e in second.json()["data"]] == ["grant"]
    assert second.json()["pagination"] == {"page": 2, "pageSize": 3, "total": 4, "totalPages": 2}
    assert (past.status_code, past.json()["data"]) == (200, [])


def test_it_lists_no_entries_for_an_owner_never_granted(bob):
    response = bob.api.get("/api/v1/credits/entries")
    assert response.json() == {
        "data": [],
        "pagination": {"page": 1, "pageSize": 20, "total": 0, "totalPages": 0},
    }


def test_it_keeps_balance_after_consistent_with_the_amounts(alice, rex, zed, linguist, completed):
    failed = submit(alice, agentId=zed.id, maxBudget=7777)
    fail(zed, failed["id"])
    assert thumbs(alice, completed["id"], "down").json() == {"refunded": True}
    submit(alice, taskType="translation", maxBudget=1500)  # stays held in routing

    entries = entries_of(alice, pageSize=100)

    assert entries[0]["balanceAfter"] == credits_of(alice)["available"] == 100_000 - 1500
    for newer, older in pairwise(entries):
        assert newer["balanceAfter"] == older["balanceAfter"] + newer["amount"]
    assert entries[-1]["balanceAfter"] == entries[-1]["amount"]
    assert sum(e["amount"] for e in entries) == 100_000 - 1500
