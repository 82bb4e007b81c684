"""Querysets compiled once (city.api.prepared): the same instances as the ORM's, related objects
included, in one query each time, compiled once, from any thread; and inserts built once that
write the rows the ORM writes."""

from __future__ import annotations

import threading

import pytest
from django.db import connections, transaction
from django.db.models import Q
from django.db.transaction import TransactionManagementError
from django.test.utils import CaptureQueriesContext

from city.api.prepared import Insert, Prepared, Update
from city.identity.ids import secret_hash
from city.identity.models import ApiSecret
from credits.models import Hold
from tasks.models import Sandbox, Task, TaskEvent


def values(obj) -> dict:
    return {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields}


def test_a_prepared_read_builds_what_the_orm_builds(alice, completed, django_assert_num_queries):
    tasks = Prepared(
        lambda owner_id, task_id: Task.objects.filter(caller_owner=owner_id, pk=task_id)
    )

    with django_assert_num_queries(1):
        found = tasks.first(owner_id=alice.owner.pk, task_id=completed["id"])
    expected = Task.objects.get(pk=completed["id"])

    assert values(found) == values(expected)
    assert isinstance(found.output, dict) and found.completed_at.tzinfo is not None
    assert tasks.first(owner_id="ow_nobody", task_id=completed["id"]) is None


def test_select_related_objects_come_in_the_same_query(alice, django_assert_num_queries):
    secrets = Prepared(
        lambda hashed: (
            ApiSecret.objects.select_related("owner__user", "agent__operator")
            .filter(secret_hash=hashed, revoked_at__isnull=True)
            .order_by("pk")[:1]
        )
    )

    with django_assert_num_queries(1):
        record = secrets.first(hashed=secret_hash(alice.token))
        email = record.owner.user.email

    assert (record.owner_id, email, record.agent) == (alice.owner.pk, "alice@example.com", None)


def test_a_parameter_may_appear_twice_and_builds_once(alice, rex, submitted):
    built = []

    def build(agent_id, task_id):
        built.append(agent_id)
        return Task.objects.filter(Q(caller_agent=agent_id) | Q(agent=agent_id), pk=task_id)

    tasks = Prepared(build)
    found = [tasks.first(agent_id=rex.id, task_id=submitted["id"]) for _ in range(3)]

    assert [t.pk for t in found] == [submitted["id"]] * 3
    assert len(built) == 1  # compiled once, with markers
    assert tasks.first(agent_id="ag_other", task_id=submitted["id"]) is None


def test_every_parameter_must_reach_the_sql(db):
    unused = Prepared(lambda task_id, other: Task.objects.filter(pk=task_id))

    with pytest.raises(ValueError, match="every parameter"):
        unused.first(task_id="t", other="o")


def test_another_thread_runs_it_on_its_own_connection(postgres, alice, submitted):
    tasks = Prepared(
        lambda owner_id, task_id: Task.objects.filter(caller_owner=owner_id, pk=task_id)
    )
    tasks.first(owner_id=alice.owner.pk, task_id=submitted["id"])  # compiled on this thread
    found, used = [], []

    def read():
        theirs = connections["default"]
        found.append(tasks.first(owner_id=alice.owner.pk, task_id=submitted["id"]))
        used.append(theirs)
        theirs.close()

    thread = threading.Thread(target=read)
    thread.start()
    thread.join()

    assert found[0].pk == submitted["id"]
    assert used[0] is not connections["default"]


def test_a_locking_read_locks_and_refuses_to_run_outside_a_transaction(alice, submitted):
    tasks = Prepared(
        lambda owner_id, task_id: Task.objects.select_for_update().filter(
            caller_owner=owner_id, pk=task_id
        )
    )

    with transaction.atomic(), CaptureQueriesContext(connections["default"]) as queries:
        found = tasks.first(owner_id=alice.owner.pk, task_id=submitted["id"])
    with pytest.raises(TransactionManagementError):
        tasks.first(owner_id=alice.owner.pk, task_id=submitted["id"])

    assert found.pk == submitted["id"]
    if connections["default"].features.has_select_for_update:
        assert queries[0]["sql"].rstrip().endswith("FOR UPDATE")


# Insert: rows written as the ORM writes them, in one statement built once


def row(obj) -> dict:
    """A row's values as read back, but for its id and creation time."""
    fresh = type(obj).objects.get(pk=obj.pk)
    return {k: v for k, v in values(fresh).items() if k not in ("id", "created_at")}


def test_an_insert_writes_the_rows_the_orm_writes_and_sets_their_keys(
    alice, submitted, django_assert_num_queries
):
    insert = Insert(TaskEvent)
    task = Task.objects.get(pk=submitted["id"])

    def build(n):
        return TaskEvent(
            task=task, type="note", from_status="a", to_status="b", actor="me", data={"n": n}
        )

    ours, orms = [build(1), build(2)], [build(1), build(2)]
    with django_assert_num_queries(1):
        insert(*ours)
    TaskEvent.objects.bulk_create(orms)

    assert all(isinstance(e.pk, int) and not e._state.adding for e in ours)
    assert [row(e) for e in ours] == [row(e) for e in orms]
    assert [e.pk for e in ours] == sorted(e.pk for e in ours)  # in the order given
    assert all(e.created_at is not None for e in ours)  # auto_now_add, as save() sets it


def test_an_insert_keeps_a_key_set_in_python(alice, submitted):
    task = Task.objects.get(pk=submitted["id"])
    sandbox = Sandbox(task=task, provider="local")
    key = sandbox.pk  # the model's default, set when built

    Insert(Sandbox)(sandbox)

    assert Sandbox.objects.get(pk=key).task_id == task.pk


def test_an_insert_refuses_rows_some_with_keys_and_some_without(alice, submitted):
    task = Task.objects.get(pk=submitted["id"])
    keyed = TaskEvent(task=task, type="note", actor="me", id=10**9)

    with pytest.raises(ValueError, match="every row"):
        Insert(TaskEvent)(TaskEvent(task=task, type="note", actor="me"), keyed)


def test_an_integer_parameter_is_substituted_like_a_string(alice, submitted):
    holds = Prepared(lambda hold_id: Hold.objects.filter(pk=hold_id))
    hold_id = Task.objects.get(pk=submitted["id"]).hold_id

    assert holds.first(hold_id=hold_id).pk == hold_id
    assert holds.first(hold_id=hold_id + 10**6) is None


# Update: a row's fields written as save(update_fields=...) writes them, from SQL built once


def test_an_update_writes_the_fields_it_names_and_only_those(
    alice, submitted, django_assert_num_queries
):
    update = Update(Task, lambda: ["status", "updated_at"])
    task = Task.objects.get(pk=submitted["id"])
    before = task.updated_at
    Task.objects.filter(pk=task.pk).update(price=1)  # changed behind this instance's back
    task.error_message = "not written: not named"
    task.refresh_from_db(fields=["status"])

    with django_assert_num_queries(1):
        assert update(task) == 1
    fresh = Task.objects.get(pk=task.pk)

    assert fresh.updated_at > before  # auto_now, as save() sets it
    assert (fresh.price, fresh.error_message) == (1, "")
    assert update(Task(id="gone")) == 0


def test_an_insert_falls_back_to_the_orm_where_keys_cannot_come_back(alice, submitted, monkeypatch):
    features = type(connections["default"].features)
    monkeypatch.setattr(features, "can_return_rows_from_bulk_insert", False)
    task = Task.objects.get(pk=submitted["id"])
    events = [TaskEvent(task=task, type="note", actor="me") for _ in range(2)]

    Insert(TaskEvent)(*events)

    assert TaskEvent.objects.filter(task=task, type="note").count() == 2
    assert all(not e._state.adding for e in events)
    assert {e.pk for e in events} == set(
        TaskEvent.objects.filter(task=task, type="note").values_list("pk", flat=True)
    )
