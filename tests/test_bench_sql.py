"""``bench/sql/lifecycle.sql`` says it issues what City issues for one task from submit to
completed: the same statements, on the same tables, locking the same rows, in the same order.
These tests hold it to that, so that a change to City's SQL cannot leave ``bench/ceiling``
measuring a task City no longer runs."""

from __future__ import annotations

import re
from pathlib import Path

from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import GOOD_OUTPUT, task_body

SCRIPTS = Path(__file__).resolve().parent.parent / "bench" / "sql"
# The table a statement is about: the one it reads FROM, inserts INTO or UPDATEs (the first
# named; a script's subselects on bench_keys come after it).
_TABLE = re.compile(r'\b(?:FROM|INTO|UPDATE)\s+"?(\w+)"?', re.IGNORECASE)


def shape(sql: str) -> tuple[str, str, bool] | None:
    """What a statement does, as (verb, table without its app's or bench's prefix, whether it
    locks rows); None for a transaction's own BEGIN and COMMIT, which only SQLite's log shows."""
    verb = sql.split(None, 1)[0].rstrip(";").upper()
    if verb in ("BEGIN", "COMMIT"):
        return None
    table = _TABLE.search(sql).group(1).split("_", 1)[1]
    return verb, table, "FOR UPDATE" in sql.upper()


def script_statements(name: str) -> list[str]:
    text = (SCRIPTS / name).read_text()
    return [
        line for line in text.splitlines() if line.strip() and not line.startswith(("--", "\\"))
    ]


def run_a_task(owner, agent) -> str:
    """Submit a direct hire, then as the agent provision, start and complete it. The quality
    check runs after the complete's commit (eager Celery), and the sandbox's cleanup after the
    check's own commit, as on a worker."""
    tid = owner.api.post("/api/v1/tasks", task_body(agentId=agent.id)).json()["id"]
    sandbox = agent.api.post(f"/api/v1/tasks/{tid}/sandbox").json()["sandboxId"]
    agent.api.post(f"/api/v1/tasks/{tid}/executing", {"sandboxId": sandbox})
    agent.api.post(f"/api/v1/tasks/{tid}/complete", {"output": GOOD_OUTPUT, "executionTimeMs": 5})
    return tid


def test_the_lifecycle_script_issues_what_a_task_from_submit_to_completed_issues(
    postgres, alice, rex
):
    # In a steady state, as the benchmark runs: the secrets' last use recorded, the platform's
    # fee accounts open.
    run_a_task(alice, rex)
    with CaptureQueriesContext(connection) as captured:
        tid = run_a_task(alice, rex)
    # Read before the next request: each request's start empties the connection's query log.
    city = [s for s in (shape(q["sql"]) for q in captured.captured_queries) if s]
    assert alice.api.get(f"/api/v1/tasks/{tid}").json()["status"] == "completed"
    script = [s for s in map(shape, script_statements("lifecycle.sql")) if s]
    assert script == city


def test_the_lifecycle_script_begins_with_the_submit_script():
    submit = script_statements("submit.sql")
    lifecycle = script_statements("lifecycle.sql")[: len(submit)]
    assert [shape(s) for s in lifecycle] == [shape(s) for s in submit]


def test_it_tells_a_locking_read_from_a_plain_one_and_names_the_table():
    assert shape('SELECT "tasks_task"."id" FROM "tasks_task" WHERE id = 1 FOR UPDATE') == (
        "SELECT",
        "task",
        True,
    )
    assert shape("SELECT * FROM bench_task WHERE id = (SELECT task_id FROM bench_keys)") == (
        "SELECT",
        "task",
        False,
    )
    assert shape('INSERT INTO "credits_entry" (a) VALUES (1)') == ("INSERT", "entry", False)
    assert shape("UPDATE bench_account SET balance = 1") == ("UPDATE", "account", False)
    assert shape("COMMIT") is None
