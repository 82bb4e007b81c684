"""The task list's totals and pages at any size: on PostgreSQL ``total`` comes from the tally
the database keeps (``tasks_tally``, migration ``tasks.0002``) instead of a ``COUNT(*)`` of the
caller's tasks, and a page is read off one index in the list's order (``bench/list`` measures
why). These tests hold the tally to the tasks themselves through every way a task changes."""

from __future__ import annotations

import re
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from city.identity.principals import Principal
from credits.services import grant_issue
from tasks import selectors
from tasks.models import Task
from tests.actions import fail, run_to_completion, start, sub_hire, submit, thumbs
from tests.factories import task_body


def tally() -> dict[tuple[str, str], int]:
    """What the tally says, per scope and status (statuses at 0 left out)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT scope, status, SUM(tasks) FROM tasks_tally GROUP BY scope, status "
            "HAVING SUM(tasks) <> 0"
        )
        return {(scope, status): int(n) for scope, status, n in cursor.fetchall()}


def counted() -> dict[tuple[str, str], int]:
    """The same, counted from the tasks."""
    counts: Counter[tuple[str, str]] = Counter()
    for task in Task.objects.values("caller_owner_id", "caller_agent_id", "agent_id", "status"):
        status = task["status"]
        if task["caller_owner_id"]:
            counts[f"owner:{task['caller_owner_id']}", status] += 1
        if task["caller_agent_id"]:
            counts[f"caller:{task['caller_agent_id']}", status] += 1
        if task["agent_id"]:
            counts[f"assignee:{task['agent_id']}", status] += 1
        if task["caller_agent_id"] and task["caller_agent_id"] == task["agent_id"]:
            counts[f"both:{task['agent_id']}", status] += 1
    return dict(counts)


def total(person, **params) -> int:
    response = person.api.get("/api/v1/tasks", params)
    assert response.status_code == 200, response.content
    return response.json()["pagination"]["total"]


# PostgreSQL: the tally


def test_it_keeps_the_tally_exact_through_every_status_a_task_takes(
    postgres, alice, rex, zed, linguist
):
    waiting = submit(alice, agentId=rex.id)["id"]
    assert tally() == counted()
    routing = submit(alice, taskType="translation")["id"]  # linguist is busy: it waits
    cancelled = submit(alice, agentId=rex.id)["id"]
    alice.api.post(f"/api/v1/tasks/{cancelled}/cancel")
    assert tally() == counted()
    failed = submit(alice, agentId=rex.id)["id"]
    start(rex, failed)
    assert tally() == counted()
    fail(rex, failed)
    done = submit(alice, agentId=rex.id)["id"]
    run_to_completion(rex, done)
    assert tally() == counted()
    refunded = submit(alice, agentId=rex.id)["id"]
    run_to_completion(rex, refunded)
    assert thumbs(alice, refunded, "down").json() == {"refunded": True}
    grant_issue(agent=rex.agent, amount=5000)
    sub_hire(rex, agentId=zed.id)

    assert tally() == counted()
    statuses = Task.objects.filter(pk__in=[waiting, routing, cancelled, failed, done, refunded])
    assert sorted(statuses.values_list("status", flat=True)) == [
        "completed",
        "failed",
        "failed",
        "refunded",
        "routing",
        "submitted",
    ]


def test_it_answers_totals_from_the_tally_without_counting_tasks(postgres, alice, rex, zed):
    for _ in range(3):
        submit(alice, agentId=rex.id)
    fail(rex, submit(alice, agentId=rex.id)["id"])
    grant_issue(agent=rex.agent, amount=5000)
    sub_hire(rex, agentId=zed.id)

    with CaptureQueriesContext(connection) as captured:
        totals = [
            total(alice),
            total(alice, status="submitted"),
            total(alice, status="failed"),
            total(alice, status="completed"),
            total(rex),
            total(rex, role="caller"),
            total(rex, role="assignee"),
            total(rex, role="assignee", status="failed"),
            total(zed),
        ]

    assert totals == [4, 3, 1, 0, 5, 1, 4, 1, 1]
    counts = [q["sql"] for q in captured.captured_queries if "COUNT(" in q["sql"].upper()]
    assert counts == []


def test_it_counts_a_task_an_agent_both_hired_and_took_once(postgres, rex, zed):
    grant_issue(agent=rex.agent, amount=5000)
    hired = sub_hire(rex, agentId=zed.id)["id"]
    # The services never let an agent hire itself; the tally counts such a task right anyway.
    Task.objects.filter(pk=hired).update(agent=rex.agent)

    assert (total(rex), total(rex, role="caller"), total(rex, role="assignee")) == (1, 1, 1)
    assert (total(zed), tally()) == (0, counted())


def test_it_follows_writes_made_in_sql_and_in_bulk(postgres, alice, rex):
    tids = [submit(alice, agentId=rex.id)["id"] for _ in range(4)]
    with connection.cursor() as cursor:
        # Writers other than the services (an operator's script, a data fix) count too.
        cursor.execute(
            "UPDATE tasks_task SET agent_id = NULL, status = 'routing' WHERE id = ANY(%s)",
            [tids[:2]],
        )
    assert (total(alice, status="routing"), total(rex, role="assignee")) == (2, 2)
    assert tally() == counted()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE tasks_task SET agent_id = %s, status = 'submitted' WHERE id = ANY(%s)",
            [rex.id, tids[:2]],
        )
    Task.objects.filter(pk=tids[3]).delete()  # its hold stays open: the ledger still balances

    assert (total(alice), total(alice, status="routing"), total(rex)) == (3, 0, 3)
    assert tally() == counted()


def test_it_folds_a_scopes_rows_into_one_per_status_with_the_same_counts(postgres, alice, rex):
    for _ in range(3):
        fail(rex, submit(alice, agentId=rex.id)["id"])
    scopes = [f"owner:{alice.owner.pk}", f"assignee:{rex.id}"]
    before = tally()

    with connection.cursor() as cursor:
        cursor.execute("SELECT tasks_tally_fold(%s)", [scopes])
        cursor.execute(
            "SELECT scope, status, COUNT(*) FROM tasks_tally WHERE scope = ANY(%s) "
            "GROUP BY scope, status",
            [scopes],
        )
        rows = cursor.fetchall()

    assert sorted(rows) == [
        (f"assignee:{rex.id}", "failed", 1),
        (f"owner:{alice.owner.pk}", "failed", 1),
    ]
    assert tally() == before == counted()
    assert total(alice, status="failed") == 3


def test_it_empties_the_tally_when_the_tasks_are_truncated(postgres, alice, rex):
    submit(alice, agentId=rex.id)
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE tasks_task CASCADE")

    assert tally() == {}
    assert total(alice) == 0


def test_it_reads_an_owners_page_off_one_index_without_sorting(postgres, alice, rex):
    for _ in range(3):
        submit(alice, agentId=rex.id)
    principal = Principal(owner=alice.owner)
    with transaction.atomic(), connection.cursor() as cursor:
        # The tables are tiny: ask for the plan the planner would pick for a big owner.
        cursor.execute("SET LOCAL enable_seqscan = off")
        for status in (None, "failed"):
            page = selectors.task_list(principal=principal, status=status)[20:40]
            plan = page.explain()
            assert "task_owner_" in plan, plan
            assert "Sort" not in plan, plan


def test_it_reads_an_agents_page_off_its_indexes_without_sorting_its_tasks(
    postgres, alice, rex, zed
):
    """An agent's whole list merges the two halves, each read in its index's order (a
    ``Merge Append``): an ``OR`` of the two would make PostgreSQL sort every task of the agent."""
    grant_issue(agent=rex.agent, amount=10_000)
    submit(alice, agentId=rex.id)
    sub_hire(rex, agentId=zed.id)
    principal = Principal(agent=rex.agent)
    with transaction.atomic(), connection.cursor() as cursor:
        # The tables are tiny: ask for the plan the planner would pick for a busy agent, where
        # sorting would mean every one of its tasks.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
        for role, status, indexes in [
            (None, None, ["task_hirer_newest", "task_agent_newest"]),
            (None, "submitted", ["task_hirer_newest", "task_agent_status_newest"]),
            ("assignee", None, ["task_agent_newest"]),
            ("assignee", "submitted", ["task_agent_status_newest"]),
            ("caller", None, ["task_hirer_newest"]),
        ]:
            pages = selectors.task_page_source(principal=principal, status=status, role=role)
            page = pages.union(20, 40) if role is None else pages[20:40]
            plan = page.explain()
            assert all(index in plan for index in indexes), plan
            assert not re.search(r"(^|->)\s*(Incremental )?Sort\s+\(", plan, re.M), plan


# Any database


def test_it_pages_an_agents_hired_and_assigned_tasks_merged_newest_first(alice, rex, zed):
    """The tasks an agent hired and those assigned to it, interleaved in time, come out in one
    order (newest first, then by id) page after page, with and without a status."""
    grant_issue(agent=rex.agent, amount=20_000)
    now = timezone.now()
    made = []
    for n in range(6):
        if n % 3 == 1:
            tid = sub_hire(rex, agentId=zed.id)["id"]
        else:
            tid = submit(alice, agentId=rex.id)["id"]
        made.append(tid)
    # Two of them at the same moment, one from each half: the id decides between them.
    moments = [now - timedelta(minutes=m) for m in (50, 40, 30, 30, 20, 10)]
    for tid, moment in zip(made, moments, strict=True):
        Task.objects.filter(pk=tid).update(created_at=moment)
    alice.api.post(f"/api/v1/tasks/{made[0]}/cancel")
    expected = sorted(made, key=lambda t: (moments[made.index(t)], t), reverse=True)

    for params, want in [({}, expected), ({"status": "submitted"}, expected[:-1])]:
        seen = []
        for page in (1, 2, 3, 4):
            body = rex.api.get("/api/v1/tasks", {**params, "pageSize": 2, "page": page}).json()
            seen += [t["id"] for t in body["data"]]
            assert body["pagination"]["total"] == len(want)
        assert seen == want
    assert [t["id"] for t in rex.api.get("/api/v1/tasks").json()["data"]] == expected


def test_it_orders_tasks_created_at_the_same_moment_by_id_newest_first(alice, rex):
    tids = [submit(alice, agentId=rex.id)["id"] for _ in range(3)]
    Task.objects.filter(pk__in=tids).update(created_at=timezone.now() - timedelta(days=1))
    newer = submit(alice, agentId=rex.id)["id"]

    response = alice.api.get("/api/v1/tasks", {"pageSize": 2, "page": 2})

    assert [t["id"] for t in response.json()["data"]] == sorted(tids, reverse=True)[1:]
    first = alice.api.get("/api/v1/tasks", {"pageSize": 2}).json()["data"]
    assert [t["id"] for t in first] == [newer, max(tids)]


def test_it_keeps_totals_exact_across_submit_cancel_and_status_changes(alice, rex):
    tids = [submit(alice, agentId=rex.id)["id"] for _ in range(3)]
    alice.api.post(f"/api/v1/tasks/{tids[0]}/cancel")
    start(rex, tids[1])

    assert [
        total(alice),
        total(alice, status="submitted"),
        total(alice, status="failed"),
        total(alice, status="executing"),
        total(rex, role="assignee", status="executing"),
    ] == [3, 1, 1, 1, 1]


@pytest.mark.parametrize("params", [{}, {"status": "submitted"}, {"page": 2, "pageSize": 2}])
def test_it_lists_in_three_statements_whatever_the_filter_or_page(
    alice, rex, params, django_assert_max_num_queries
):
    for _ in range(3):
        alice.api.post("/api/v1/tasks", task_body(agentId=rex.id))
    alice.api.get("/api/v1/tasks")  # the token's last use is recorded: a steady state

    # The key, the total, the page (PostgreSQL; SQLite adds BEGIN and COMMIT but sends none
    # here: reads run outside a transaction).
    with django_assert_max_num_queries(3):
        response = alice.api.get("/api/v1/tasks", params)
    assert response.status_code == 200
    assert response.json()["data"]


@pytest.mark.parametrize("params", [{}, {"status": "submitted"}, {"page": 2, "pageSize": 2}])
def test_it_lists_an_agents_whole_list_in_one_read_of_its_tasks(
    alice, rex, zed, params, django_assert_max_num_queries
):
    grant_issue(agent=rex.agent, amount=10_000)
    for _ in range(2):
        submit(alice, agentId=rex.id)
        sub_hire(rex, agentId=zed.id)
    rex.api.get("/api/v1/tasks")  # the key's last use is recorded: a steady state

    # The key, the total, the page: one statement merging both halves on PostgreSQL; SQLite
    # reads each half (it takes no LIMIT inside a UNION) and they are merged in Python.
    with django_assert_max_num_queries(3 if connection.vendor == "postgresql" else 4):
        response = rex.api.get("/api/v1/tasks", params)
    assert response.status_code == 200
    assert response.json()["data"]
