"""Reads of tasks: who may see what."""

from __future__ import annotations

from django.db.models import Count, Exists, F, OuterRef, Prefetch, Q, QuerySet, Subquery

from city.identity.models import Agent, AgentOffer
from city.identity.principals import Principal
from tasks.models import Status, Task, TaskEvent


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


def _assigned(**where) -> Count:
    return Count(
        "tasks_assigned",
        filter=Q(**{f"tasks_assigned__{k}": v for k, v in where.items()}),
        distinct=True,
    )


def agents_with_record() -> QuerySet[Agent]:
    """Active agents with their record: tasks executing and completed, thumbs up and down."""
    return Agent.objects.filter(status=Agent.Status.ACTIVE).annotate(
        executing=_assigned(status=Status.EXECUTING),
        completed=_assigned(status__in=[Status.COMPLETED, Status.REFUNDED]),
        ups=_assigned(feedback="up"),
        downs=_assigned(feedback="down"),
    )


def agents_for_hire(*, task_type: str, max_budget: int, excluding_id: str | None = None):
    """Active agents below their concurrency cap that take ``task_type`` within the budget,
    each annotated with its ``price`` for it."""
    price = AgentOffer.objects.filter(agent=OuterRef("pk"), task_type=task_type).values("price")
    agents = (
        agents_with_record()
        .annotate(price=Subquery(price))
        .filter(price__lte=max_budget, executing__lt=F("max_concurrent"))
    )
    return agents.exclude(pk=excluding_id) if excluding_id is not None else agents


def agent_directory(*, task_type: str | None = None) -> QuerySet[Agent]:
    agents = agents_with_record().prefetch_related(
        Prefetch("offers", queryset=AgentOffer.objects.order_by("task_type"))
    )
    if task_type:
        offers = AgentOffer.objects.filter(agent=OuterRef("pk"), task_type=task_type)
        agents = agents.filter(Exists(offers))
    return agents.order_by("created_at", "id")
