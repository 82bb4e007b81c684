"""Reads of tasks: who may see what, which tasks are overdue, and agents' records."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import (
    Case,
    CharField,
    Count,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)

from city.identity.models import Agent, AgentOffer
from city.identity.principals import Principal
from tasks.errors import TaskNotFound
from tasks.models import Status, Task, TaskEvent

# listSubmitted returns at most this many tasks, oldest first (API.md).
SUBMITTED_LIMIT = 100


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


def task_visible(*, principal: Principal, task_id: str, for_update: bool = False) -> Task:
    """The task if ``principal`` may see it, else ``TaskNotFound`` (no existence oracle)."""
    tasks = Task.objects.select_for_update() if for_update else Task.objects
    task = tasks.filter(visible_to(principal), pk=task_id).first()
    if task is None:
        raise TaskNotFound(task_id)
    return task


def submitted_for_agent(*, principal: Principal) -> QuerySet[Task]:
    """The agent's queue: tasks assigned to it and waiting in ``submitted``, oldest first."""
    return Task.objects.filter(agent=principal.agent, status=Status.SUBMITTED).order_by(
        "created_at", "id"
    )[:SUBMITTED_LIMIT]


# Timeouts: one rule per overstayed status, read by the sweep (which tasks) and by the service
# that fails one (whether it is still overdue once locked, and why).


def _timeout_rules(now: datetime) -> list[tuple[Q, str]]:
    def ago(seconds: int) -> datetime:
        return now - timedelta(seconds=seconds)

    execution = settings.EXECUTION_TIMEOUT_SECONDS
    assignment = settings.ASSIGNMENT_TIMEOUT_SECONDS
    routing = settings.ROUTING_TIMEOUT_SECONDS
    return [
        (
            Q(status=Status.EXECUTING, started_at__lte=ago(execution)),
            f"execution exceeded {execution} s",
        ),
        (
            Q(status=Status.SUBMITTED, agent__isnull=False, assigned_at__lte=ago(assignment)),
            f"the agent did not start within {assignment} s",
        ),
        (
            Q(
                status__in=[Status.SUBMITTED, Status.ROUTING],
                agent__isnull=True,
                created_at__lte=ago(routing),
            ),
            f"no agent took the task within {routing} s",
        ),
    ]


def overdue(now: datetime) -> Q:
    """Tasks that overstayed their status at ``now``."""
    where = Q(pk__in=[])
    for rule, _ in _timeout_rules(now):
        where |= rule
    return where


def timeout_reason(now: datetime) -> Case:
    """An annotation: why a task is overdue at ``now``, or null if it is not."""
    whens = [When(rule, then=Value(reason)) for rule, reason in _timeout_rules(now)]
    return Case(*whens, default=None, output_field=CharField())


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
    """Active agents with their offers and record; ``rating`` is the % of thumbs up, rounded
    half up, or null while unrated."""
    rated = F("ups") + F("downs")
    agents = (
        agents_with_record()
        .annotate(
            rating=Case(
                When(Q(ups__gt=0) | Q(downs__gt=0), then=(200 * F("ups") + rated) / (2 * rated)),
                default=None,
                output_field=IntegerField(),
            )
        )
        .prefetch_related(Prefetch("offers", queryset=AgentOffer.objects.order_by("task_type")))
    )
    if task_type:
        offers = AgentOffer.objects.filter(agent=OuterRef("pk"), task_type=task_type)
        agents = agents.filter(Exists(offers))
    return agents.order_by("created_at", "id")
