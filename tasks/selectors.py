"""Reads of tasks: who may see what."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from city.principals import Principal
from tasks.models import Task, TaskEvent


def visible_to(principal: Principal) -> Q:
    """A task is visible to its caller and to its assigned agent, and to no one else."""
    if principal.is_agent:
        return Q(caller_agent=principal.agent) | Q(agent=principal.agent)
    return Q(caller_owner=principal.owner)


def is_caller(task: Task, principal: Principal) -> bool:
    if principal.is_agent:
        return task.caller_agent_id == principal.agent.pk
    return task.caller_owner_id == principal.owner.pk


def is_assignee(task: Task, principal: Principal) -> bool:
    return principal.is_agent and task.agent_id == principal.agent.pk


def task_list(*, principal: Principal, status: str | None = None, role: str | None = None):
    if role == "caller":
        where = Q(caller_agent=principal.agent)
    elif role == "assignee":
        where = Q(agent=principal.agent)
    else:
        where = visible_to(principal)
    tasks = Task.objects.filter(where)
    if status:
        tasks = tasks.filter(status=status)
    return tasks.order_by("-created_at", "-id")


def task_get(*, principal: Principal, task_id: str) -> Task | None:
    return Task.objects.filter(visible_to(principal), pk=task_id).first()


def submitted_for_agent(*, principal: Principal) -> QuerySet[Task]:
    return Task.objects.filter(agent=principal.agent, status="submitted").order_by(
        "created_at", "id"
    )


def event_list(*, task: Task) -> QuerySet[TaskEvent]:
    return task.events.order_by("id")
