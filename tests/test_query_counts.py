"""The number of statements each endpoint sends, pinned so that it cannot creep back.

Counted as the test client sees them, BEGIN and COMMIT included (SQLite sends them as
statements; PostgreSQL's driver does not, so there each count is two lower). Jobs that run after
a request commits (eagerly here: routing, the quality check, sandbox cleanup) are counted with
the request that started them. Counts are taken in a steady state: the secrets' last use is
recent and the platform's accounts exist.
"""

from __future__ import annotations

import pytest

from tests.factories import GOOD_OUTPUT, task_body


@pytest.fixture
def warm(alice, rex):
    """A first task run to completion, so that nothing below opens an account or records a
    secret's first use."""
    tid = alice.api.post("/api/v1/tasks", task_body(agentId=rex.id)).json()["id"]
    sandbox = rex.api.post(f"/api/v1/tasks/{tid}/sandbox").json()["sandboxId"]
    rex.api.post(f"/api/v1/tasks/{tid}/executing", {"sandboxId": sandbox})
    rex.api.post(f"/api/v1/tasks/{tid}/complete", {"output": GOOD_OUTPUT, "executionTimeMs": 5})
    assert alice.api.get(f"/api/v1/tasks/{tid}").json()["status"] == "completed"
    return tid


def test_it_submits_a_direct_hire_in_eleven_statements(
    warm, alice, rex, django_assert_max_num_queries
):
    # key, agent+offer, lock accounts, transaction, entries, balances, hold, task, events;
    # BEGIN and COMMIT.
    with django_assert_max_num_queries(11):
        response = alice.api.post("/api/v1/tasks", task_body(agentId=rex.id))
    assert response.status_code == 201


def test_it_submits_and_routes_a_task_in_seventeen_statements(
    warm, alice, rex, django_assert_max_num_queries
):
    with django_assert_max_num_queries(17):
        response = alice.api.post("/api/v1/tasks", task_body())
    assert response.status_code == 201
    assert alice.api.get(f"/api/v1/tasks/{response.json()['id']}").json()["agentId"] == rex.id


@pytest.mark.parametrize(
    ("path", "most"),
    [
        ("/api/v1/tasks/{tid}", 2),
        ("/api/v1/tasks/{tid}/events", 3),
        ("/api/v1/tasks", 3),
        ("/api/v1/credits", 2),
        ("/api/v1/credits/entries", 3),
        ("/api/v1/agents", 4),
    ],
)
def test_it_reads_in_few_statements(warm, alice, path, most, django_assert_max_num_queries):
    with django_assert_max_num_queries(most):
        response = alice.api.get(path.format(tid=warm))
    assert response.status_code == 200


def test_it_lists_an_agents_queue_in_two_statements(
    warm, alice, rex, django_assert_max_num_queries
):
    for _ in range(3):
        alice.api.post("/api/v1/tasks", task_body(agentId=rex.id))

    with django_assert_max_num_queries(2):
        response = rex.api.get("/api/v1/agent/tasks/submitted")
    assert len(response.json()) == 3


def test_it_runs_an_agents_actions_in_few_statements(
    warm, alice, rex, django_assert_max_num_queries
):
    tid = alice.api.post("/api/v1/tasks", task_body(agentId=rex.id)).json()["id"]

    # key, task (locked), live sandbox?, sandbox, event; no savepoint around the insert.
    with django_assert_max_num_queries(7):
        sandbox = rex.api.post(f"/api/v1/tasks/{tid}/sandbox").json()["sandboxId"]
    with django_assert_max_num_queries(9):
        rex.api.post(f"/api/v1/tasks/{tid}/executing", {"sandboxId": sandbox})
    # 6 for the hand-in; after it commits, 12 for the quality check (read, lock, capture,
    # record) and 4 for the sandbox's cleanup.
    with django_assert_max_num_queries(22):
        response = rex.api.post(
            f"/api/v1/tasks/{tid}/complete", {"output": GOOD_OUTPUT, "executionTimeMs": 5}
        )
    assert response.status_code == 200
    # The feedback, then the refund: hold, ledger rows, the task to refunded, its event.
    with django_assert_max_num_queries(16):
        response = alice.api.post(f"/api/v1/tasks/{tid}/feedback", {"feedback": "down"})
    assert response.json() == {"refunded": True}
