"""The one place a task's events are recorded, and the hook that follows each commit.

``TaskEvent`` is the task's history: every transition and action is a row, written in the same
transaction as the change it records. Whatever must happen after a change is durable (enqueue
the next job, publish to the stream) subscribes here and is called with the events once the
recording transaction commits; a rolled-back change calls nobody.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from django.db import transaction

from city.api.prepared import Insert
from tasks.models import Task, TaskEvent

logger = logging.getLogger(__name__)

SYSTEM = "system"

Hook = Callable[[Sequence[TaskEvent]], None]
_hooks: list[Hook] = []
_insert_events = Insert(TaskEvent)  # every change records events: its SQL is built once


def subscribe(hook: Hook) -> None:
    """Call ``hook(events)`` after each commit that recorded task events (once per hook)."""
    if hook not in _hooks:
        _hooks.append(hook)


def event(task: Task, type_: str, *, actor: str, before: str, data: dict | None = None):
    """An event of ``task``, not yet recorded, ending in the task's current status."""
    return TaskEvent(
        task=task,
        type=type_,
        from_status=before,
        to_status=task.status,
        actor=actor,
        data=data or {},
    )


def record(*events: TaskEvent) -> list[TaskEvent]:
    """Write the events in the caller's transaction (one INSERT); the hooks run after commit."""
    _insert_events(*events)
    written = list(events)
    for hook in _hooks:
        # robust: the change has committed by then; a hook that fails (a broker down at
        # enqueue time, say) is logged, and the sweeps recover what it would have started.
        # A closure, not functools.partial: Django logs a robust failure by the callback's
        # __qualname__, which a partial lacks, and the AttributeError would escape instead.
        def after_commit(hook=hook):
            hook(written)

        after_commit.__qualname__ = f"after_commit[{getattr(hook, '__qualname__', hook)}]"
        transaction.on_commit(after_commit, robust=True)
    return written
