"""Every task event is recorded by tasks.events.record; its hooks run after commit, only then."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.db import transaction

from tasks import events
from tasks.models import Task, TaskEvent
from tests.factories import task_body


@pytest.fixture
def heard():
    calls: list[list[tuple[str, str]]] = []

    def hook(recorded):
        calls.append([(event.type, event.task_id) for event in recorded])

    events.subscribe(hook)
    yield calls
    events._hooks.remove(hook)


def test_it_calls_hooks_after_the_commit_with_the_recorded_events(alice, rex, heard):
    response = alice.api.post("/api/v1/tasks", task_body(agentId=rex.id))

    tid = response.json()["id"]
    assert heard == [[("submit", tid), ("assign", tid)]]
    ids = list(TaskEvent.objects.filter(task_id=tid).values_list("type", flat=True))
    assert ids == ["submit", "assign"]


def test_it_calls_no_hook_for_events_rolled_back(submitted, heard):
    task = Task.objects.get(pk=submitted["id"])

    with pytest.raises(RuntimeError), transaction.atomic():
        events.record(events.event(task, "note", actor="system", before=task.status))
        assert heard == []  # not before the commit either
        raise RuntimeError("roll back")

    assert heard == []
    assert not TaskEvent.objects.filter(type="note").exists()


def test_it_writes_task_events_nowhere_else():
    root = Path(__file__).resolve().parents[2]
    writers = [
        str(path.relative_to(root))
        for folder in ("city", "credits", "tasks", "disputes")
        for path in (root / folder).rglob("*.py")
        if "migrations" not in path.parts
        and re.search(
            r"TaskEvent\.objects\.(create|bulk_create)|(?<!class )TaskEvent\(", path.read_text()
        )
    ]

    assert writers == ["tasks/events.py"]


def test_it_keeps_a_committed_answer_when_a_hook_fails(alice, rex, caplog):
    def broken(recorded):
        raise ConnectionError("the broker is down")

    events.subscribe(broken)
    try:
        response = alice.api.post("/api/v1/tasks", task_body(agentId=rex.id))
    finally:
        events._hooks.remove(broken)

    assert response.status_code == 201
    assert Task.objects.filter(pk=response.json()["id"]).exists()
    assert "the broker is down" in caplog.text
