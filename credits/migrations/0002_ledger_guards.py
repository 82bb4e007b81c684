"""The database itself refuses what the ledger must never do, where it can.

PostgreSQL: a deferred constraint trigger rejects, at commit, any transaction whose entries do
not sum to zero; entries and transactions cannot be updated or deleted (TRUNCATE, used only by
test teardown, is a statement, not a row change). SQLite: entries and transactions cannot be
updated (deletes stay possible there, as Django's test flush deletes rows).
"""

from django.db import migrations

POSTGRES_UP = """
CREATE OR REPLACE FUNCTION credits_ledger_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'ledger rows are append-only: % on % refused', TG_OP, TG_TABLE_NAME;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER credits_entry_append_only BEFORE UPDATE OR DELETE ON credits_entry
    FOR EACH ROW EXECUTE FUNCTION credits_ledger_append_only();
CREATE TRIGGER credits_transaction_append_only BEFORE UPDATE OR DELETE ON credits_transaction
    FOR EACH ROW EXECUTE FUNCTION credits_ledger_append_only();

CREATE OR REPLACE FUNCTION credits_transaction_balanced() RETURNS trigger AS $$
DECLARE
    total bigint;
BEGIN
    SELECT COALESCE(SUM(amount), 0) INTO total FROM credits_entry
        WHERE transaction_id = NEW.transaction_id;
    IF total <> 0 THEN
        RAISE EXCEPTION 'ledger transaction % does not balance: entries sum to %',
            NEW.transaction_id, total;
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE CONSTRAINT TRIGGER credits_entry_balanced AFTER INSERT ON credits_entry
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION credits_transaction_balanced();
"""

POSTGRES_DOWN = """
DROP TRIGGER IF EXISTS credits_entry_balanced ON credits_entry;
DROP TRIGGER IF EXISTS credits_entry_append_only ON credits_entry;
DROP TRIGGER IF EXISTS credits_transaction_append_only ON credits_transaction;
DROP FUNCTION IF EXISTS credits_transaction_balanced();
DROP FUNCTION IF EXISTS credits_ledger_append_only();
"""

SQLITE_UP = [
    """CREATE TRIGGER credits_entry_no_update BEFORE UPDATE ON credits_entry
       BEGIN SELECT RAISE(ABORT, 'ledger rows are append-only: UPDATE on credits_entry refused'); END""",
    """CREATE TRIGGER credits_transaction_no_update BEFORE UPDATE ON credits_transaction
       BEGIN SELECT RAISE(ABORT, 'ledger rows are append-only: UPDATE on credits_transaction refused'); END""",
]

SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS credits_entry_no_update",
    "DROP TRIGGER IF EXISTS credits_transaction_no_update",
]


def up(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_UP, params=None)
    elif vendor == "sqlite":
        for sql in SQLITE_UP:
            schema_editor.execute(sql)


def down(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_DOWN, params=None)
    elif vendor == "sqlite":
        for sql in SQLITE_DOWN:
            schema_editor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [("credits", "0001_initial")]

    operations = [migrations.RunPython(up, down)]
