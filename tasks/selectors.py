"""Reads of tasks: who may see what, which tasks are overdue, and agents' records."""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import (
    Case,
    CharField,
    Count,
    DateTimeField,
    Exists,
    ExpressionWrapper,
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
from django.db.models.lookups import LessThanOrEqual

from city.api.prepared import Prepared
from city.identity.models import Agent, AgentOffer, Owner
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


# Every task list's order, newest first; the indexes the lists read are in this order.
LIST_ORDER = ("-created_at", "-id")


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
    return tasks.order_by(*LIST_ORDER)


def task_page_source(*, principal: Principal, status: str | None = None, role: str | None = None):
    """``task_list``'s rows in its order, in the form the list endpoint pages (slice it; do not
    filter it). An agent's whole list (no ``role``) is the tasks it hired and those assigned to
    it, two halves each read in its own index's order (``task_hirer_newest``,
    ``task_agent_newest`` or ``task_agent_status_newest``) and merged (``MergedPages``): an
    ``OR`` of the two would make PostgreSQL sort every task of the agent for each page. The
    halves never share a task: an agent cannot be assigned a task it hired (neither a direct
    hire nor routing allows it; were one so, it is listed once, with the assigned)."""
    if not principal.is_agent or role:
        return task_list(principal=principal, status=status, role=role)
    hired = task_list(principal=principal, status=status, role="caller")
    assigned = task_list(principal=principal, status=status, role="assignee")
    return MergedPages(hired.exclude(agent=principal.agent), assigned)


class MergedPages:
    """Disjoint querysets of tasks, sliced as one list in ``LIST_ORDER``: ``merged[a:b]``.

    On PostgreSQL one statement: each half limited to the slice's end in its own order, the
    union ordered and sliced, so that each half reads at most ``b`` rows off its index and only
    the page's rows come back. Elsewhere (SQLite, which takes no ORDER BY or LIMIT inside a
    compound statement): each half's first ``b`` rows, merged here.
    """

    def __init__(self, *halves: QuerySet[Task]):
        self.halves = [half.order_by(*LIST_ORDER) for half in halves]

    def __getitem__(self, window: slice) -> list[Task]:
        if not isinstance(window, slice) or window.step or window.stop is None:
            raise TypeError("MergedPages takes a slice with an end: merged[a:b]")
        start, stop = window.start or 0, window.stop
        if connection.features.supports_slicing_ordering_in_compound:
            return list(self.union(start, stop))
        heads = [half[:stop] for half in self.halves]
        merged = heapq.merge(*heads, key=lambda task: (task.created_at, task.pk), reverse=True)
        return list(merged)[start:stop]

    def union(self, start: int, stop: int) -> QuerySet[Task]:
        """The one statement that reads ``[start:stop]`` where the database allows it."""
        heads = [half[:stop] for half in self.halves]
        return heads[0].union(*heads[1:], all=True).order_by(*LIST_ORDER)[start:stop]


def _tally_scopes(principal: Principal, role: str | None) -> list[tuple[str, int]]:
    """The tally's scopes whose counts, each times its sign, add up to ``task_list``'s tasks."""
    if not principal.is_agent:
        return [(f"owner:{principal.owner.pk}", 1)]
    pk = principal.agent.pk
    if role == "caller":
        return [(f"caller:{pk}", 1)]
    if role == "assignee":
        return [(f"assignee:{pk}", 1)]
    # Visible as caller or as assignee: a task that is both is in each, and counted once.
    return [(f"caller:{pk}", 1), (f"assignee:{pk}", 1), (f"both:{pk}", -1)]


def task_total(*, principal: Principal, status: str | None = None, role: str | None = None) -> int:
    """How many tasks ``task_list`` lists, exactly, without counting them.

    On PostgreSQL from the tally the database keeps (``tasks_tally``, migration
    ``tasks.0002``): a sum over a few dozen rows, 0.05 ms however many tasks there are, where
    ``COUNT(*)`` grows with them (an owner with 1,000,000 tasks: 50-70 ms at best, an
    index-only scan on both cores of a freshly vacuumed table, against a whole request's 10;
    see ``bench/list.py``). The tally is written by triggers in each task write's own
    transaction, so a statement reading it sees exactly the tasks a ``COUNT(*)`` in its place
    would. Elsewhere (SQLite: tests and development), the count.
    """
    if connection.vendor != "postgresql":
        return task_list(principal=principal, status=status, role=role).count()
    scopes = _tally_scopes(principal, role)
    signs = " ".join("WHEN %s THEN %s" for _ in scopes)
    sql = (
        f"SELECT COALESCE(SUM(CASE scope {signs} END * tasks), 0) FROM tasks_tally "
        "WHERE scope = ANY(%s)"
    )
    params = [value for scope_sign in scopes for value in scope_sign]
    params.append([scope for scope, _ in scopes])
    if status:
        sql += " AND status = %s"
        params.append(status)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.fetchone()[0])


def task_search(*, principal: Principal, status: str | None = None, query: str | None = None):
    """The dashboard's list: ``task_list`` narrowed to tasks whose id, type or description
    contains ``query``."""
    tasks = task_list(principal=principal, status=status)
    if query:
        tasks = tasks.filter(
            Q(pk__icontains=query)
            | Q(task_type__icontains=query)
            | Q(input__description__icontains=query)
        )
    return tasks


# The read every task endpoint starts with, compiled once (city.api.prepared) for each kind of
# principal, from ``visible_to`` itself (the principal stands in by its id).
_OWNERS_TASK = Prepared(
    lambda owner_id, task_id: Task.objects.filter(
        visible_to(Principal(owner=Owner(pk=owner_id))), pk=task_id
    )
)
_AGENTS_TASK = Prepared(
    lambda agent_id, task_id: Task.objects.filter(
        visible_to(Principal(agent=Agent(pk=agent_id))), pk=task_id
    )
)
# ...and locked, for the changes: every action on a task starts with it.
_OWNERS_TASK_LOCKED = Prepared(
    lambda owner_id, task_id: Task.objects.select_for_update().filter(
        visible_to(Principal(owner=Owner(pk=owner_id))), pk=task_id
    )
)
_AGENTS_TASK_LOCKED = Prepared(
    lambda agent_id, task_id: Task.objects.select_for_update().filter(
        visible_to(Principal(agent=Agent(pk=agent_id))), pk=task_id
    )
)


def task_visible(*, principal: Principal, task_id: str, for_update: bool = False) -> Task:
    """The task if ``principal`` may see it, else ``TaskNotFound`` (no existence oracle)."""
    if principal.is_agent:
        read = _AGENTS_TASK_LOCKED if for_update else _AGENTS_TASK
        task = read.first(agent_id=principal.agent.pk, task_id=task_id)
    else:
        read = _OWNERS_TASK_LOCKED if for_update else _OWNERS_TASK
        task = read.first(owner_id=principal.owner.pk, task_id=task_id)
    if task is None:
        raise TaskNotFound(task_id)
    return task


def submitted_for_agent(*, principal: Principal) -> QuerySet[Task]:
    """The agent's queue: tasks assigned to it and waiting in ``submitted``, oldest first."""
    return Task.objects.filter(agent=principal.agent, status=Status.SUBMITTED).order_by(
        "created_at", "id"
    )[:SUBMITTED_LIMIT]


# Timeouts: one rule per overstayed status, read by the sweep (which tasks) and by the service
# that settles one (whether it is still overdue once locked, which rule, and why).


@dataclass(frozen=True)
class TimeoutRule:
    name: str
    where: Q
    action: str  # "fail", or "unassign": back to routing without the agent that never started
    reason: str


def timeout_rules(now: datetime) -> list[TimeoutRule]:
    def ago(seconds: int) -> datetime:
        return now - timedelta(seconds=seconds)

    execution = settings.EXECUTION_TIMEOUT_SECONDS
    assignment = settings.ASSIGNMENT_TIMEOUT_SECONDS
    routing = settings.ROUTING_TIMEOUT_SECONDS
    # A caller's own input.timeoutSeconds counts when it is shorter than the platform's.
    own_deadline = ExpressionWrapper(
        F("started_at") + F("execution_timeout"), output_field=DateTimeField()
    )
    return [
        TimeoutRule(
            "execution",
            Q(status=Status.EXECUTING, started_at__lte=ago(execution)),
            "fail",
            f"execution exceeded {execution} s",
        ),
        TimeoutRule(
            "own_execution",
            Q(status=Status.EXECUTING, execution_timeout__lt=timedelta(seconds=execution))
            & Q(LessThanOrEqual(own_deadline, now)),
            "fail",
            "execution exceeded the task's timeoutSeconds",
        ),
        TimeoutRule(
            "assignment_direct",
            Q(
                status=Status.SUBMITTED,
                agent__isnull=False,
                direct_hire=True,
                assigned_at__lte=ago(assignment),
            ),
            "fail",
            f"the hired agent did not start within {assignment} s",
        ),
        TimeoutRule(
            "assignment_routed",
            Q(
                status=Status.SUBMITTED,
                agent__isnull=False,
                direct_hire=False,
                assigned_at__lte=ago(assignment),
            ),
            "unassign",
            f"the routed agent did not start within {assignment} s",
        ),
        TimeoutRule(
            "routing",
            Q(
                status__in=[Status.SUBMITTED, Status.ROUTING],
                agent__isnull=True,
                routing_since__lte=ago(routing),
            ),
            "fail",
            f"no agent took the task within {routing} s",
        ),
    ]


def overdue(now: datetime) -> Q:
    """Tasks that overstayed their status at ``now``."""
    where = Q(pk__in=[])
    for rule in timeout_rules(now):
        where |= rule.where
    return where


def overdue_rule(now: datetime) -> Case:
    """An annotation: the name of the first rule a task breaks at ``now``, or null."""
    whens = [When(rule.where, then=Value(rule.name)) for rule in timeout_rules(now)]
    return Case(*whens, default=None, output_field=CharField())


def due_for_routing(now: datetime) -> QuerySet[Task]:
    """Unassigned tasks whose next routing attempt is due (backoff: ``next_route_at``)."""
    return Task.objects.filter(
        Q(next_route_at__isnull=True) | Q(next_route_at__lte=now),
        status__in=[Status.SUBMITTED, Status.ROUTING],
        agent__isnull=True,
    )


def event_list(*, task: Task) -> QuerySet[TaskEvent]:
    return task.events.order_by("id")


def _assigned(**where) -> Count:
    return Count(
        "tasks_assigned",
        filter=Q(**{f"tasks_assigned__{k}": v for k, v in where.items()}),
        distinct=True,
    )


def with_record(agents: QuerySet[Agent]) -> QuerySet[Agent]:
    """``agents`` with their record: tasks executing and completed (passed the quality gate),
    rejected by the gate, refunded in part or whole, thumbs up and down; and ``rating``, the %
    of thumbs up rounded half up, or null while unrated."""
    rated = F("ups") + F("downs")
    return agents.annotate(
        executing=_assigned(status=Status.EXECUTING),
        completed=_assigned(status__in=[Status.COMPLETED, Status.REFUNDED]),
        rejected=_assigned(status=Status.FAILED, failure_reason="quality_gate"),
        refunded=_assigned(credits_refunded__gt=0),
        ups=_assigned(feedback="up"),
        downs=_assigned(feedback="down"),
    ).annotate(
        rating=Case(
            When(Q(ups__gt=0) | Q(downs__gt=0), then=(200 * F("ups") + rated) / (2 * rated)),
            default=None,
            output_field=IntegerField(),
        )
    )


def agents_with_record() -> QuerySet[Agent]:
    """Active agents with their record (``with_record``)."""
    return with_record(Agent.objects.filter(status=Agent.Status.ACTIVE))


def agents_offering(*, task_type: str, excluding: set[str]) -> QuerySet[Agent]:
    """Active agents that take ``task_type``, but those in ``excluding``, each with its
    ``price`` for it and its record."""
    price = AgentOffer.objects.filter(agent=OuterRef("pk"), task_type=task_type).values("price")
    return (
        agents_with_record()
        .annotate(price=Subquery(price))
        .filter(price__isnull=False)
        .exclude(pk__in=excluding)
    )


def lineage_agent_ids(task: Task) -> set[str]:
    """Every agent in the task's chain of sub-hires: its calling agent, and up the parents, each
    parent's assignee and calling agent. Hiring any of them again would close a loop."""
    found = {task.caller_agent_id} if task.caller_agent_id else set()
    parent_id, seen = task.parent_id, set()
    while parent_id is not None and parent_id not in seen:
        seen.add(parent_id)
        parent = (
            Task.objects.filter(pk=parent_id)
            .values("caller_agent_id", "agent_id", "parent_id")
            .first()
        )
        if parent is None:
            break
        found.update(a for a in (parent["caller_agent_id"], parent["agent_id"]) if a)
        parent_id = parent["parent_id"]
    return found


def offered_task_types() -> list[str]:
    """The task types some active agent takes, in order: what a caller can submit."""
    return list(
        AgentOffer.objects.filter(agent__status=Agent.Status.ACTIVE)
        .order_by("task_type")
        .values_list("task_type", flat=True)
        .distinct()
    )


def agent_directory(*, task_type: str | None = None) -> QuerySet[Agent]:
    """Active agents with their offers and record (``with_record``)."""
    agents = agents_with_record().prefetch_related(
        Prefetch("offers", queryset=AgentOffer.objects.order_by("task_type"))
    )
    if task_type:
        offers = AgentOffer.objects.filter(agent=OuterRef("pk"), task_type=task_type)
        agents = agents.filter(Exists(offers))
    return agents.order_by("created_at", "id")
