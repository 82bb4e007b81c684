"""Celery jobs: each fetches by id and calls one service."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from tasks import services
from tasks.models import ACTIVE_STATUSES, Task


@shared_task
def route_task(task_id: str) -> None:
    services.task_route(task_id=task_id)


@shared_task
def check_quality(task_id: str) -> None:
    services.task_quality_check(task_id=task_id)


@shared_task
def destroy_sandboxes(task_id: str) -> None:
    services.sandboxes_destroy_for_task(task_id=task_id)


@shared_task
def sweep_timeouts() -> int:
    """Retry routing of unassigned tasks and fail every task that overstayed its status."""
    now = timezone.now()
    failed = 0
    for task in Task.objects.filter(status__in=ACTIVE_STATUSES).only(
        "id", "status", "agent_id", "created_at", "assigned_at", "started_at"
    ):
        if services.timeout_reason(task, now) is not None:
            failed += services.task_time_out(task_id=task.pk, now=now).status == "failed"
        elif task.agent_id is None:
            services.task_route(task_id=task.pk)
    return failed
