"""``bench/sql/lifecycle.sql`` says it issues what City issues for one task from submit to
completed: the same statements, on the same tables, locking the same rows, in the same order
and the same transactions. These tests hold it to that, so that a change to City's SQL cannot
leave ``bench/ceiling`` measuring a task City no longer runs."""

from __future__ import annotations

import re
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

from django.db import connections

from tests.factories import GOOD_OUTPUT, task_body

SCRIPTS = Path(__file__).resolve().parent.parent / "bench" / "sql"
# The table a statement is about: the one it reads FROM, inserts INTO or UPDATEs (the first
# named; a script's subselects on bench_keys come after it).
_TABLE = re.compile(r'\b(?:FROM|INTO|UPDATE)\s+"?(\w+)"?', re.IGNORECASE)


def shape(sql: str) -> tuple[str, str, bool] | str:
    """What a statement does, as (verb, table without its app's or bench's prefix, whether it
    locks rows); a transaction's BEGIN, COMMIT or ROLLBACK as that word."""
    verb = sql.split(None, 1)[0].rstrip(";").upper()
    if verb in ("BEGIN", "COMMIT", "ROLLBACK"):
        return verb
    table = _TABLE.search(sql).group(1).split("_", 1)[1]
    return verb, table, "FOR UPDATE" in sql.upper()


@contextmanager
def sent_to_the_database():
    """Every statement Django sends, with BEGIN, COMMIT and ROLLBACK where its transactions
    start and end: psycopg sends those outside Django's cursors, so they are recorded at
    Django's own calls (autocommit off, commit, rollback)."""
    database = connections["default"]
    sent: list[str] = []

    def execute(run, sql, params, many, context):
        sent.append(sql)
        return run(sql, params, many, context)

    def marker(word, original):
        def call(*args):
            if args != (True,):  # autocommit back on ends nothing: commit or rollback did
                sent.append(word)
            return original(*args)

        return call

    with (
        database.execute_wrapper(execute),
        mock.patch.object(database, "_set_autocommit", marker("BEGIN", database._set_autocommit)),
        mock.patch.object(database, "_commit", marker("COMMIT", database._commit)),
        mock.patch.object(database, "_rollback", marker("ROLLBACK", database._rollback)),
    ):
        yield sent


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
    postgres, redis_cache, alice, rex
):
    # As production runs, on Redis: the web process keeps the principals of the secrets it has
    # seen (city.identity.authentication), so a request sends no key lookup.
    # In a steady state, as the benchmark runs: the principals kept, the secrets' last use
    # recorded, the platform's fee accounts open.
    run_a_task(alice, rex)
    with sent_to_the_database() as sent:
        tid = run_a_task(alice, rex)
    assert alice.api.get(f"/api/v1/tasks/{tid}").json()["status"] == "completed"
    city = [shape(sql) for sql in sent]
    assert city.count("BEGIN") == 6
    assert [shape(sql) for sql in script_statements("lifecycle.sql")] == city


def test_the_lifecycle_script_begins_with_the_submit_script_but_its_key_lookup():
    submit = [s for s in script_statements("submit.sql") if "FROM bench_apisecret" not in s]
    lifecycle = script_statements("lifecycle.sql")[: len(submit)]
    assert len(submit) == len(script_statements("submit.sql")) - 1
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
    assert shape("COMMIT;") == "COMMIT"
