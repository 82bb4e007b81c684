"""An agent's lists read in their indexes' order: the tasks it hired and those assigned to it,
newest first (``tasks.selectors.task_page_source`` merges the two), with and without a status.

Built CONCURRENTLY on PostgreSQL, so that writes to a large task table go on meanwhile (the
migration is not atomic for that reason), and the new indexes exist before the two they replace
are dropped; elsewhere (SQLite: tests and development) plain CREATE and DROP INDEX. The
foreign keys' own indexes (and their ``LIKE`` twins) go too: each of those columns now leads one
of the lists' indexes, and every task write paid for six index entries nothing read.
"""

import django.db.models.deletion
from django.contrib.postgres import operations as postgres
from django.db import migrations, models
from django.db.migrations.operations import AddIndex, RemoveIndex


def _concurrently(schema_editor) -> bool:
    return schema_editor.connection.vendor == "postgresql"


class AddIndexConcurrently(postgres.AddIndexConcurrently):
    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if not _concurrently(schema_editor):
            return AddIndex.database_forwards(self, app_label, schema_editor, from_state, to_state)
        return super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if not _concurrently(schema_editor):
            return AddIndex.database_backwards(self, app_label, schema_editor, from_state, to_state)
        return super().database_backwards(app_label, schema_editor, from_state, to_state)


class RemoveIndexConcurrently(postgres.RemoveIndexConcurrently):
    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if not _concurrently(schema_editor):
            return RemoveIndex.database_forwards(
                self, app_label, schema_editor, from_state, to_state
            )
        return super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if not _concurrently(schema_editor):
            return RemoveIndex.database_backwards(
                self, app_label, schema_editor, from_state, to_state
            )
        return super().database_backwards(app_label, schema_editor, from_state, to_state)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("credits", "0004_fee_account_shards"),
        ("identity", "0001_initial"),
        ("tasks", "0002_list_indexes_and_tally"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="task",
            index=models.Index(
                fields=["caller_agent", "-created_at", "-id"], name="task_hirer_newest"
            ),
        ),
        AddIndexConcurrently(
            model_name="task",
            index=models.Index(fields=["agent", "-created_at", "-id"], name="task_agent_newest"),
        ),
        AddIndexConcurrently(
            model_name="task",
            index=models.Index(
                fields=["agent", "status", "-created_at", "-id"], name="task_agent_status_newest"
            ),
        ),
        RemoveIndexConcurrently(model_name="task", name="tasks_task_caller__92e1d9_idx"),
        RemoveIndexConcurrently(model_name="task", name="tasks_task_agent_i_80619e_idx"),
        # The foreign keys' own indexes: each column leads a list index now.
        *(
            migrations.AlterField(
                model_name="task",
                name=name,
                field=models.ForeignKey(
                    blank=True,
                    db_index=False,
                    null=True,
                    on_delete=django.db.models.deletion.PROTECT,
                    related_name=related_name,
                    to=to,
                ),
            )
            for name, related_name, to in [
                ("caller_owner", "tasks_submitted", "identity.owner"),
                ("caller_agent", "tasks_submitted", "identity.agent"),
                ("agent", "tasks_assigned", "identity.agent"),
            ]
        ),
    ]
