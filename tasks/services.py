"""Every business action on a task, one service each.

Each runs in one transaction: it re-fetches the task with ``select_for_update()`` (so an agent's
``complete`` and a timeout sweep, or two thumbs-down, cannot both win), checks the transition is
allowed, applies it, moves money through ``credits.services`` and records what happened with
``tasks.events.record``. What follows a change (routing, the quality check, sandbox cleanup, the
stream) hangs off that record's after-commit hook, so a worker never sees uncommitted state and
these services never import the jobs that call them.

Services raise the domain errors of ``tasks.errors`` (and ``credits.services``); the API's one
handler renders them.
"""

from __future__ import annotations

import functools
import logging
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django_fsm import can_proceed

from city.api.errors import ServiceUnavailable
from city.api.prepared import Insert, Prepared, Update
from city.identity.models import Agent, AgentOffer
from city.identity.principals import Principal
from credits import services as credits
from credits.models import Hold
from tasks import events, quality, routing, sandboxes, selectors
from tasks.errors import (
    AgentAtCapacity,
    FeedbackAlreadyGiven,
    InvalidHire,
    InvalidParentTask,
    InvalidTransition,
    NotAssignee,
    NotCaller,
    ParentNotExecuting,
    SandboxAlreadyLive,
    SandboxNotFound,
    SandboxNotLive,
    UnknownTaskType,
)
from tasks.events import SYSTEM
from tasks.models import FailureReason, Feedback, Sandbox, Status, Task
from tasks.models import task_id as new_task_id
from tasks.selectors import is_assignee, is_caller, task_visible

logger = logging.getLogger(__name__)

_insert_task = Insert(Task)  # a submit's insert, its SQL built once
_insert_sandbox = Insert(Sandbox)
# The agent's and the platform's actions on a task, each a query compiled once (city.api.prepared).
_TASK = Prepared(lambda task_id: Task.objects.filter(pk=task_id))
_TASK_LOCKED = Prepared(lambda task_id: Task.objects.select_for_update().filter(pk=task_id))
_LIVE_SANDBOX = Prepared(
    lambda task_id: Sandbox.objects.filter(task_id=task_id, status=Sandbox.Status.LIVE)
)
_LIVE_SANDBOX_LOCKED = Prepared(
    lambda task_id: Sandbox.objects.select_for_update().filter(
        task_id=task_id, status=Sandbox.Status.LIVE
    )
)
_AGENT_LOCKED = Prepared(lambda agent_id: Agent.objects.select_for_update().filter(pk=agent_id))
_update_sandbox = Update(Sandbox, lambda: ["status", "destroyed_at"])
# A direct hire's agent and offer, in one query compiled once (city.api.prepared).
_HIRED_OFFER = Prepared(
    lambda agent_id, task_type: (
        AgentOffer.objects.select_related("agent")
        .filter(agent_id=agent_id, agent__status=Agent.Status.ACTIVE, task_type=task_type)
        .order_by("pk")[:1]
    )
)


def _actor(principal: Principal | None) -> str:
    return principal.key if principal is not None else SYSTEM


def _locked_for_assignee(principal: Principal, task_id: str) -> Task:
    task = task_visible(principal=principal, task_id=task_id, for_update=True)
    if not is_assignee(task, principal):
        raise NotAssignee()
    return task


def _hold_of(task: Task) -> Hold:
    """The task's hold, by id only: the ledger re-reads it under its own lock."""
    return Hold(pk=task.hold_id)


def _require(task: Task, transition, action: str) -> None:
    """The FSM decides which statuses allow an action; anything else is a conflict."""
    if not can_proceed(transition):
        raise InvalidTransition(task, action)


# Submit and assign


def _validate_hire(
    *, principal: Principal, agent_id: str, task_type: str, max_budget: int
) -> tuple[Agent, int]:
    """The agent a caller hires directly, and its price: agent and offer in one query."""
    offer = _HIRED_OFFER.first(agent_id=agent_id, task_type=task_type)
    if offer is None:
        if not AgentOffer.objects.filter(
            task_type=task_type, agent__status=Agent.Status.ACTIVE
        ).exists():
            raise UnknownTaskType(task_type)
        if not Agent.objects.filter(pk=agent_id, status=Agent.Status.ACTIVE).exists():
            raise InvalidHire(f"No active agent {agent_id}.", code="agent_not_found")
        raise InvalidHire(
            f"Agent {agent_id} does not take {task_type} tasks.",
            code="agent_does_not_take_task_type",
        )
    if principal.is_agent and offer.agent_id == principal.agent.pk:
        raise InvalidHire("An agent cannot hire itself.", code="cannot_hire_self")
    if offer.price > max_budget:
        raise InvalidHire(
            f"Agent {agent_id} charges {offer.price} for {task_type}, above maxBudget "
            f"{max_budget}.",
            code="price_exceeds_budget",
        )
    return offer.agent, offer.price


def _validate_parent(*, principal: Principal, parent_task_id: str) -> Task:
    if not principal.is_agent:
        raise InvalidParentTask(
            "parentTaskId is for agents sub-hiring from a task they execute.",
            code="parent_task_not_allowed",
        )
    parent = Task.objects.filter(
        selectors.visible_to(principal), pk=parent_task_id, agent=principal.agent
    ).first()
    if parent is None:
        raise InvalidParentTask(
            f"No task {parent_task_id} assigned to you.", code="parent_task_not_found"
        )
    if parent.status != Status.EXECUTING:
        raise ParentNotExecuting(f"Parent task {parent_task_id} is {parent.status}, not executing.")
    return parent


@transaction.atomic
def task_submit(
    *,
    principal: Principal,
    task_type: str,
    input: dict,
    max_budget: int,
    agent_id: str | None = None,
    parent_task_id: str | None = None,
) -> Task:
    """Create a task and hold its whole budget; a direct hire is assigned at once.

    Returned as this transaction commits it: routing, which runs after the commit (in-process
    on the embedded default), moves the task on without changing what the caller gets back.
    """
    if agent_id is not None:
        hire = _validate_hire(
            principal=principal, agent_id=agent_id, task_type=task_type, max_budget=max_budget
        )
    else:
        hire = None
        if not AgentOffer.objects.filter(
            task_type=task_type, agent__status=Agent.Status.ACTIVE
        ).exists():
            raise UnknownTaskType(task_type)
    parent = None
    if parent_task_id is not None:
        parent = _validate_parent(principal=principal, parent_task_id=parent_task_id)
        if hire is not None and hire[0].pk in selectors.lineage_agent_ids(parent):
            raise InvalidHire(
                f"Agent {agent_id} is already in this chain of sub-hires: hiring it would "
                "close a loop.",
                code="hiring_loop",
            )
    timeout_seconds = input.get("timeoutSeconds")

    tid = new_task_id()
    payer = {"agent": principal.agent} if principal.is_agent else {"owner": principal.owner}
    hold = credits.hold_place(**payer, amount=max_budget, reference=f"task:{tid}", subject=tid)
    task = Task(
        id=tid,
        task_type=task_type,
        input=input,
        max_budget=max_budget,
        caller_owner=principal.owner,
        caller_agent=principal.agent,
        parent=parent,
        hold=hold,
        credits_held=max_budget,
        direct_hire=hire is not None,
        routing_since=None if hire else timezone.now(),
        execution_timeout=timedelta(seconds=timeout_seconds) if timeout_seconds else None,
    )
    actor = _actor(principal)
    # The task is inserted once, already assigned when hired directly: its events say so.
    submitted = events.event(
        task,
        "submit",
        actor=actor,
        before="",
        data={"maxBudget": max_budget, "routing": "direct" if hire else "smart"},
    )
    if hire is not None:
        agent, price = hire
        task.assign(agent=agent, price=price, at=timezone.now())
        assigned = events.event(
            task,
            "assign",
            actor=actor,
            before=Status.SUBMITTED,
            data={"agentId": agent.pk, "price": price, "direct": True},
        )
        _insert_task(task)
        events.record(submitted, assigned)
    else:
        _insert_task(task)
        events.record(submitted)
    return task


@transaction.atomic
def task_route(*, task_id: str, now=None) -> Task | None:
    """Smart routing: assign the best eligible agent; fail the task at once if every agent that
    takes its type costs more than its budget; else leave it in ``routing`` and try again after
    a backoff (the sweep fails it past ROUTING_TIMEOUT_SECONDS)."""
    now = now or timezone.now()
    task = Task.objects.select_for_update().filter(pk=task_id).first()
    if task is None or task.agent_id is not None:
        return task
    recorded = []
    if task.status == Status.SUBMITTED:
        task.route()
        recorded.append(events.event(task, "route", actor=SYSTEM, before=Status.SUBMITTED))
    if task.status != Status.ROUTING:
        return task
    decision = routing.decide(task)
    if decision.budget_exceeded:
        if recorded:
            task.save()
            events.record(*recorded)
        return _fail(
            task,
            reason=FailureReason.BUDGET_EXCEEDED,
            error_message=(
                f"every agent that takes {task.task_type} costs more than maxBudget "
                f"{task.max_budget} (the cheapest: {decision.cheapest_price})"
            ),
            actor=SYSTEM,
        )
    chosen = decision.chosen
    if chosen is None:
        task.route_attempts += 1
        task.next_route_at = now + timedelta(seconds=routing.retry_delay(task.route_attempts))
    else:
        task.assign(agent=chosen.agent, price=chosen.price, at=now)
        recorded.append(
            events.event(
                task,
                "assign",
                actor=SYSTEM,
                before=Status.ROUTING,
                data={
                    **chosen.summary(),
                    "direct": False,
                    "runnerUp": decision.runner_up.summary() if decision.runner_up else None,
                },
            )
        )
    task.save()
    if recorded:
        events.record(*recorded)
    return task


# The assigned agent's actions


def sandbox_provision(*, principal: Principal, task_id: str) -> Sandbox:
    """A live sandbox for the task. The task's row lock orders concurrent provisions, so the
    second sees the first's sandbox and is refused; should the one-live-sandbox constraint
    still refuse an insert, that is the same 409. Whatever fails once the provider has made the
    sandbox rolls the whole change back, and the provider's sandbox is destroyed again: no row
    would ever lead the sweep to it."""
    created: list[Sandbox] = []  # the provider's sandbox, once made
    try:
        return _sandbox_provision(principal=principal, task_id=task_id, created=created)
    except Exception:
        for sandbox in created:
            try:
                sandboxes.provider().destroy(external_id=sandbox.external_id)
            except sandboxes.SandboxError:
                logger.exception("sandbox %s: left with the provider", sandbox.external_id)
        raise


@transaction.atomic
def _sandbox_provision(*, principal: Principal, task_id: str, created: list) -> Sandbox:
    task = _locked_for_assignee(principal, task_id)
    if task.status not in (Status.SUBMITTED, Status.EXECUTING):
        raise InvalidTransition(task, "provision a sandbox for")
    if _LIVE_SANDBOX.first(task_id=task.pk) is not None:
        raise SandboxAlreadyLive()
    sandbox = Sandbox(task=task, provider=settings.SANDBOX_PROVIDER)
    try:
        sandbox.external_id = sandboxes.provider().create(sandbox_id=sandbox.pk, task=task)
    except sandboxes.SandboxError as exc:
        raise ServiceUnavailable(
            f"The sandbox provider failed: {exc}", code="sandbox_provider_error"
        ) from exc
    created.append(sandbox)
    try:
        _insert_sandbox(sandbox)  # no savepoint: a refusal ends the whole change
    except IntegrityError:
        raise SandboxAlreadyLive() from None
    events.record(
        events.event(
            task,
            "sandbox_provision",
            actor=_actor(principal),
            before=task.status,
            data={"sandboxId": sandbox.pk},
        )
    )
    return sandbox


@transaction.atomic
def sandbox_destroy(*, principal: Principal, task_id: str, sandbox_id: str) -> bool:
    task = _locked_for_assignee(principal, task_id)
    sandbox = Sandbox.objects.select_for_update().filter(task=task, pk=sandbox_id).first()
    if sandbox is None:
        raise SandboxNotFound(f"No sandbox {sandbox_id} for this task.")
    destroyed = _sandbox_destroy(sandbox)
    if destroyed:
        events.record(
            events.event(
                task,
                "sandbox_destroy",
                actor=_actor(principal),
                before=task.status,
                data={"sandboxId": sandbox.pk},
            )
        )
    return destroyed


def _sandbox_destroy(sandbox: Sandbox) -> bool:
    if sandbox.status == Sandbox.Status.DESTROYED:
        return False
    sandboxes.provider_for(sandbox.provider).destroy(external_id=sandbox.external_id)
    sandbox.status = Sandbox.Status.DESTROYED
    sandbox.destroyed_at = timezone.now()
    _update_sandbox(sandbox)
    return True


@transaction.atomic
def sandboxes_destroy_for_task(*, task_id: str) -> int:
    """Destroy every live sandbox of a task (the platform's cleanup at a terminal status)."""
    return sum(_sandbox_destroy(sandbox) for sandbox in _LIVE_SANDBOX_LOCKED.all(task_id=task_id))


@transaction.atomic
def task_start(*, principal: Principal, task_id: str, sandbox_id: str) -> Task:
    """markExecuting: the assigned agent starts work in the task's live sandbox."""
    task = _locked_for_assignee(principal, task_id)
    _require(task, task.start, "start")
    live = _LIVE_SANDBOX.first(task_id=task.pk)
    if live is None or live.pk != sandbox_id:
        raise SandboxNotLive(sandbox_id)
    # The agent row is the lock that makes the concurrency cap exact under parallel starts.
    agent = _AGENT_LOCKED.first(agent_id=task.agent_id)
    if _executing_count(agent.pk) >= agent.max_concurrent:
        raise AgentAtCapacity(f"Agent is at its limit of {agent.max_concurrent} executing tasks.")
    before = task.status
    task.start(sandbox_id=sandbox_id, at=timezone.now())
    task.save()
    events.record(
        events.event(
            task, "start", actor=_actor(principal), before=before, data={"sandboxId": sandbox_id}
        )
    )
    return task


@functools.cache
def _executing_count_sql(vendor: str) -> str:
    """What ``Task.objects.filter(agent=..., status=...).count()`` sends, written once."""
    qn = connection.ops.quote_name
    table = qn(Task._meta.db_table)
    agent, status = (qn(Task._meta.get_field(name).column) for name in ("agent", "status"))
    return f"SELECT COUNT(*) FROM {table} WHERE {agent} = %s AND {status} = %s"


def _executing_count(agent_id: str) -> int:
    """The agent's executing tasks, counted under its row lock (so exactly), in one statement
    without compiling a queryset each time."""
    with connection.cursor() as cursor:
        cursor.execute(_executing_count_sql(connection.vendor), [agent_id, Status.EXECUTING])
        return cursor.fetchone()[0]


@transaction.atomic
def task_complete(
    *,
    principal: Principal,
    task_id: str,
    output: dict,
    execution_time_ms: int,
    quality_score: int | None = None,
) -> Task:
    """The agent delivers; the quality check runs once this commits.

    Returned in ``quality_check`` as committed here, whether or not the check has run since.
    """
    task = _locked_for_assignee(principal, task_id)
    _require(task, task.complete, "complete")
    before = task.status
    task.complete(output=output, execution_time_ms=execution_time_ms, self_reported=quality_score)
    task.save()
    events.record(
        events.event(
            task,
            "complete",
            actor=_actor(principal),
            before=before,
            data={"executionTimeMs": execution_time_ms, "qualityScore": quality_score},
        )
    )
    return task


@transaction.atomic
def task_fail(*, principal: Principal, task_id: str, reason: str, error_message: str = "") -> Task:
    """The assigned agent gives up; the whole hold goes back to the caller."""
    task = _locked_for_assignee(principal, task_id)
    _require(task, task.fail, "fail")
    return _fail(task, reason=reason, error_message=error_message, actor=_actor(principal))


def _fail(task: Task, *, reason: str, error_message: str, actor: str) -> Task:
    before = task.status
    task.fail(reason=reason, error_message=error_message, at=timezone.now())
    task.save()
    credits.hold_release(hold=_hold_of(task))
    events.record(
        events.event(
            task,
            "fail",
            actor=actor,
            before=before,
            data={"reason": reason, "errorMessage": error_message},
        )
    )
    return task


# The platform's actions


def task_quality_check(*, task_id: str) -> Task | None:
    """Score the output outside any lock (an evaluator may be slow), then pass or reject."""
    task = _TASK.first(task_id=task_id)
    if task is None or task.status != Status.QUALITY_CHECK:
        return task
    verdict = quality.evaluate(task)
    return _quality_apply(task_id=task_id, verdict=verdict)


@transaction.atomic
def _quality_apply(*, task_id: str, verdict: quality.Verdict) -> Task:
    task = _TASK_LOCKED.first(task_id=task_id)
    if task is None or task.status != Status.QUALITY_CHECK:
        return task  # another worker settled it first
    before = task.status
    now = timezone.now()
    data = {
        "score": verdict.score,
        "passScore": settings.QUALITY_PASS_SCORE,
        "reasons": verdict.reasons,
    }
    if verdict.passed:
        credits.hold_capture(hold=_hold_of(task), price=task.price, payee_id=task.agent_id)
        task.pass_check(score=verdict.score, reasons=verdict.reasons, at=now)
        type_ = "pass"
    else:
        credits.hold_release(hold=_hold_of(task))
        task.reject(score=verdict.score, reasons=verdict.reasons, at=now)
        type_ = "reject"
    task.save()
    events.record(events.event(task, type_, actor=SYSTEM, before=before, data=data))
    return task


@transaction.atomic
def task_time_out(*, task_id: str, now=None) -> Task | None:
    """Settle a task that overstayed its status; a no-op if it moved on meanwhile.

    The task is locked and judged overdue by the same rules, in the same statement, as the
    sweep that picked it. Most rules fail it; a routed agent that never started is taken off
    it instead, and the task goes back to routing without that agent.
    """
    now = now or timezone.now()
    task = (
        Task.objects.select_for_update()
        .annotate(overdue_by=selectors.overdue_rule(now))
        .filter(pk=task_id)
        .first()
    )
    if task is None or task.overdue_by is None:
        return task
    rule = next(r for r in selectors.timeout_rules(now) if r.name == task.overdue_by)
    if rule.action == "unassign":
        before, agent_id = task.status, task.agent_id
        task.unassign(at=now)
        task.save()
        events.record(
            events.event(
                task,
                "unassign",
                actor=SYSTEM,
                before=before,
                data={"agentId": agent_id, "reason": rule.reason},
            )
        )
        return task
    return _fail(task, reason=FailureReason.TIMEOUT, error_message=rule.reason, actor=SYSTEM)


# The caller's actions


@transaction.atomic
def task_feedback(*, principal: Principal, task_id: str, feedback: str) -> tuple[Task, bool]:
    """Thumbs up or down, once. Down strictly before the deadline refunds the whole charge."""
    task = task_visible(principal=principal, task_id=task_id, for_update=True)
    if not is_caller(task, principal):
        raise NotCaller("give feedback")
    if task.feedback:
        raise FeedbackAlreadyGiven()
    if task.status != Status.COMPLETED:
        raise InvalidTransition(task, "give feedback on")
    now = timezone.now()
    task.feedback = feedback
    task.feedback_at = now
    task.save(update_fields=["feedback", "feedback_at", "updated_at"])
    actor = _actor(principal)
    events.record(
        events.event(task, "feedback", actor=actor, before=task.status, data={"feedback": feedback})
    )
    if feedback == Feedback.DOWN and now < task.feedback_refund_deadline:
        task = task_refund(
            task=task,
            via="feedback",
            actor=actor,
            reference=f"task:{task.pk}:refund:feedback",
        )
        return task, True
    return task, False


@transaction.atomic
def task_cancel(*, principal: Principal, task_id: str) -> Task:
    """The caller takes back a task nobody has started: it fails ``cancelled``, the whole hold
    goes back. Once an agent has started, it is too late (409)."""
    task = task_visible(principal=principal, task_id=task_id, for_update=True)
    if not is_caller(task, principal):
        raise NotCaller("cancel it")
    _require(task, task.cancel, "cancel")
    before = task.status
    task.cancel(at=timezone.now())
    task.save()
    credits.hold_release(hold=_hold_of(task))
    events.record(events.event(task, "cancel", actor=_actor(principal), before=before))
    return task


@transaction.atomic(savepoint=False)
def task_refund(
    *, task: Task, amount: int | None = None, via: str, actor: str, reference: str
) -> Task:
    """Give ``amount`` of a completed task's charge back to its caller (all that is left of it
    when ``amount`` is None).

    The ledger claws it back from the agent and the platform's fee in proportion (API.md). A
    refund that brings the refunded total to the whole charge moves the task to ``refunded``;
    a partial one leaves it ``completed`` with ``creditsRefunded`` > 0. ``reference`` names
    this refund: retried under the same reference, it moves nothing again. Thumbs-down uses
    it now; dispute settlements will.
    """
    task = Task.objects.select_for_update(of=("self",)).select_related("hold").get(pk=task.pk)
    if task.status != Status.COMPLETED:
        raise InvalidTransition(task, "refund")
    if amount is None:
        amount = task.hold.refundable
    hold = credits.refund_issue(hold=task.hold, amount=amount, reference=reference)
    if hold.refunded == task.credits_refunded:
        return task  # a retried refund: nothing moved
    before = task.status
    task.credits_refunded = hold.refunded
    if hold.refunded == hold.charged:
        task.refund()
    task.save()
    events.record(
        events.event(
            task,
            "refund",
            actor=actor,
            before=before,
            data={"amount": amount, "refundedTotal": hold.refunded, "via": via},
        )
    )
    return task
