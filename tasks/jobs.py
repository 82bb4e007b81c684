"""Celery jobs: each fetches by id and calls one service.

``enqueue_after`` is subscribed to ``tasks.events`` (in ``TasksConfig.ready``): the recorded
events of a committed change say which job comes next, so the services never import this
module.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta

from celery import current_task, shared_task
from django.utils import timezone

from tasks import selectors, services
from tasks.models import TERMINAL_STATUSES, Sandbox, Status, Task, TaskEvent

logger = logging.getLogger(__name__)


def enqueue_after(events: Sequence[TaskEvent]) -> None:
    """The next job of each committed event: route, check quality, or clean up sandboxes.

    A change made by a job (a quality check settling its task) cleans up the sandboxes right
    there, on the worker, rather than queueing one more job for it; a failure is logged like a
    failed enqueue, and the sweep destroys what was left live.
    """
    for event in events:
        if event.type == "submit" and event.data.get("routing") == "smart":
            route_task.delay(event.task_id)
        elif event.type == "complete":
            check_quality.delay(event.task_id)
        if event.to_status in TERMINAL_STATUSES and event.from_status not in TERMINAL_STATUSES:
            if current_task:
                services.sandboxes_destroy_for_task(task_id=event.task_id)
            else:
                destroy_sandboxes.delay(event.task_id)


@shared_task
def route_task(task_id: str) -> None:
    services.task_route(task_id=task_id)


@shared_task
def check_quality(task_id: str) -> None:
    services.task_quality_check(task_id=task_id)


@shared_task
def destroy_sandboxes(task_id: str) -> None:
    services.sandboxes_destroy_for_task(task_id=task_id)


STUCK_QUALITY_CHECK = timedelta(minutes=5)


@shared_task
def sweep_timeouts() -> int:
    """Settle every task that overstayed its status, route those due again, re-run lost
    quality checks and destroy leaked sandboxes; each task on its own, so one failure does not
    stop the rest. Returns how many tasks it failed."""
    now = timezone.now()
    overdue = Task.objects.filter(selectors.overdue(now)).values_list("pk", flat=True)
    failed = 0
    for task_id in list(overdue):
        task = _isolated(services.task_time_out, task_id=task_id, now=now)
        failed += task is not None and task.status == Status.FAILED
    # Unassigned tasks whose next attempt is due (routing backs off between attempts).
    for task_id in list(selectors.due_for_routing(now).values_list("pk", flat=True)):
        _isolated(services.task_route, task_id=task_id, now=now)
    # A quality check whose job was lost (a broker outage at enqueue time) runs again.
    stuck = Task.objects.filter(
        status=Status.QUALITY_CHECK, updated_at__lte=now - STUCK_QUALITY_CHECK
    ).values_list("pk", flat=True)
    for task_id in list(stuck):
        _isolated(services.task_quality_check, task_id=task_id)
    # Sandboxes left live on finished tasks (a cleanup job that failed) are destroyed.
    leaked = (
        Sandbox.objects.filter(status=Sandbox.Status.LIVE, task__status__in=TERMINAL_STATUSES)
        .values_list("task_id", flat=True)
        .distinct()
    )
    for task_id in list(leaked):
        _isolated(services.sandboxes_destroy_for_task, task_id=task_id)
    return failed


def _isolated(service, **kwargs):
    """One task's failure (an evaluator's backend down, say) must not stop the sweep."""
    try:
        return service(**kwargs)
    except Exception:
        logger.exception("sweep: %s failed for %s", service.__name__, kwargs.get("task_id"))
        return None
