"""The task list at any size: its indexes, and a tally of tasks kept by the database.

``GET /api/v1/tasks`` answers a page and its ``total``. The page was already an index walk; the
total was a ``COUNT(*)`` of every task the caller has, which grows with them (an owner with
100,000 tasks: 16 ms, 195 ms with a status filter, against 1 and 6 at 10,000; see
``bench/list.py``). The indexes below give the list its exact order; the tally gives its totals.

The tally (PostgreSQL; SQLite counts, see ``tasks.selectors.task_total``): ``tasks_tally``
holds signed counts of tasks per *scope* and status, a scope being ``owner:<id>`` (the tasks
an owner submitted), ``caller:<agent id>`` (those an agent sub-hired), ``assignee:<agent id>``
(those assigned to it) and ``both:<agent id>`` (those it both hired and is assigned, counted
once in its unfiltered list). A scope's count of a status is the sum of its rows.

- Statement-level triggers with transition tables add one row per scope and status a statement
  changed, with the change (+n, -n): a submit adds a row per scope, a transition two (-1 for the
  old status, +1 for the new), an ``UPDATE`` of other columns nothing, a bulk load of 100,000
  tasks a few rows. Every writer, the ORM or SQL, is counted in its own transaction, so a total
  is exact in any snapshot, as ``COUNT(*)`` was.
- Rows are only ever inserted: two transactions changing one owner's tasks never wait for each
  other, and no new lock order appears beside the ledger's (a counter row updated in place
  would be one, and ``_fail`` saves the task before releasing the hold while a submit holds
  the accounts before inserting its task: that would deadlock).
- So that a scope's rows stay few, about one statement in eight folds the scopes it touched
  into one row per status (``tasks_tally_fold``): it deletes their rows and inserts their
  sums, in the writer's transaction, under a try-lock per scope, so a fold never waits for
  another: the fold that does not get the lock skips it. Rows inserted meanwhile by other
  transactions are not in its snapshot, so they stay and count.
- ``TRUNCATE tasks_task`` (the test suite's flush does it) empties the tally too.
"""

from django.db import migrations, models

POSTGRES_UP = """
CREATE TABLE tasks_tally (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    scope text NOT NULL,
    status text NOT NULL,
    tasks bigint NOT NULL
);
CREATE INDEX tasks_tally_scope ON tasks_tally (scope, status) INCLUDE (tasks);

-- The scopes that count a task with these callers and assignee.
CREATE FUNCTION tasks_tally_scopes(caller_owner text, caller_agent text, agent text)
RETURNS SETOF text LANGUAGE sql IMMUTABLE AS $$
    SELECT scope FROM (VALUES
        ('owner:' || caller_owner),
        ('caller:' || caller_agent),
        ('assignee:' || agent),
        (CASE WHEN caller_agent = agent THEN 'both:' || agent END)
    ) AS scopes (scope)
    WHERE scope IS NOT NULL
$$;

-- Each scope's rows, folded into one per status (none where it comes to 0). Scopes another
-- transaction is folding are skipped, never waited for.
CREATE FUNCTION tasks_tally_fold(scopes text[]) RETURNS void LANGUAGE sql AS $$
    WITH mine AS (
        SELECT scope FROM unnest(scopes) AS scope
        WHERE pg_try_advisory_xact_lock(1952543855, hashtext(scope))
    ), gone AS (
        DELETE FROM tasks_tally WHERE scope IN (SELECT scope FROM mine)
        RETURNING scope, status, tasks
    )
    INSERT INTO tasks_tally (scope, status, tasks)
    SELECT scope, status, sum(tasks) FROM gone GROUP BY scope, status HAVING sum(tasks) <> 0
$$;

CREATE FUNCTION tasks_tally_count() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    touched text[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        WITH added AS (
            INSERT INTO tasks_tally (scope, status, tasks)
            SELECT scope, status, count(*) FROM new_rows,
                tasks_tally_scopes(caller_owner_id, caller_agent_id, agent_id) AS scope
            GROUP BY scope, status
            RETURNING scope
        ) SELECT array_agg(scope) INTO touched FROM added;
    ELSIF TG_OP = 'DELETE' THEN
        WITH added AS (
            INSERT INTO tasks_tally (scope, status, tasks)
            SELECT scope, status, -count(*) FROM old_rows,
                tasks_tally_scopes(caller_owner_id, caller_agent_id, agent_id) AS scope
            GROUP BY scope, status
            RETURNING scope
        ) SELECT array_agg(scope) INTO touched FROM added;
    ELSE
        WITH changed AS (
            SELECT caller_owner_id, caller_agent_id, agent_id, status, 1 AS n FROM new_rows
            UNION ALL
            SELECT caller_owner_id, caller_agent_id, agent_id, status, -1 FROM old_rows
        ), added AS (
            INSERT INTO tasks_tally (scope, status, tasks)
            SELECT scope, status, sum(n) FROM changed,
                tasks_tally_scopes(caller_owner_id, caller_agent_id, agent_id) AS scope
            GROUP BY scope, status
            HAVING sum(n) <> 0
            RETURNING scope
        ) SELECT array_agg(scope) INTO touched FROM added;
    END IF;
    IF touched IS NOT NULL AND random() < 0.125 THEN
        PERFORM tasks_tally_fold(touched);
    END IF;
    RETURN NULL;
END;
$$;

CREATE FUNCTION tasks_tally_empty() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM tasks_tally;
    RETURN NULL;
END;
$$;

CREATE TRIGGER tasks_tally_insert AFTER INSERT ON tasks_task
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tasks_tally_count();
CREATE TRIGGER tasks_tally_update AFTER UPDATE ON tasks_task
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tasks_tally_count();
CREATE TRIGGER tasks_tally_delete AFTER DELETE ON tasks_task
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tasks_tally_count();
CREATE TRIGGER tasks_tally_truncate AFTER TRUNCATE ON tasks_task
    FOR EACH STATEMENT EXECUTE FUNCTION tasks_tally_empty();

-- The tasks already there; the triggers above (created first, in this transaction) hold off
-- every writer until it commits, so none is counted twice or missed.
INSERT INTO tasks_tally (scope, status, tasks)
SELECT scope, status, count(*) FROM tasks_task,
    tasks_tally_scopes(caller_owner_id, caller_agent_id, agent_id) AS scope
GROUP BY scope, status;
"""

POSTGRES_DOWN = """
DROP TRIGGER IF EXISTS tasks_tally_truncate ON tasks_task;
DROP TRIGGER IF EXISTS tasks_tally_delete ON tasks_task;
DROP TRIGGER IF EXISTS tasks_tally_update ON tasks_task;
DROP TRIGGER IF EXISTS tasks_tally_insert ON tasks_task;
DROP FUNCTION IF EXISTS tasks_tally_empty();
DROP FUNCTION IF EXISTS tasks_tally_count();
DROP FUNCTION IF EXISTS tasks_tally_fold(text[]);
DROP FUNCTION IF EXISTS tasks_tally_scopes(text, text, text);
DROP TABLE IF EXISTS tasks_tally;
"""


def tally_up(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_UP, params=None)


def tally_down(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_DOWN, params=None)


class Migration(migrations.Migration):

    dependencies = [
        ('credits', '0003_grant_permission'),
        ('identity', '0001_initial'),
        ('tasks', '0001_initial'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='task',
            name='tasks_task_caller__679d9b_idx',
        ),
        migrations.AddIndex(
            model_name='task',
            index=models.Index(fields=['caller_owner', '-created_at', '-id'], name='task_owner_newest'),
        ),
        migrations.AddIndex(
            model_name='task',
            index=models.Index(fields=['caller_owner', 'status', '-created_at', '-id'], name='task_owner_status_newest'),
        ),
        migrations.RunPython(tally_up, tally_down),
    ]
