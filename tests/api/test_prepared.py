"""Querysets compiled once (city.api.prepared): the same instances as the ORM's, related objects
included, in one query each time, compiled once, from any thread."""

from __future__ import annotations

import threading

import pytest
from django.db import connections
from django.db.models import Q

from city.api.prepared import Prepared
from city.identity.ids import secret_hash
from city.identity.models import ApiSecret
from tasks.models import Task


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
