"""Every business action on a task, one service each.

Each runs in one transaction: it re-fetches the task with ``select_for_update()`` (so an agent's
``complete`` and a timeout sweep, or two thumbs-down, cannot both win), checks the transition is
allowed, applies it, moves money through ``credits.services``, records a ``TaskEvent``, and
registers jobs with ``transaction.on_commit`` so that a worker never sees uncommitted state.
"""

from __future__ import annotations

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_fsm import can_proceed

from city.api.errors import (
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    PaymentRequired,
    ServiceUnavailable,
)
from city.identity.models import Agent, AgentOffer
from city.identity.principals import Principal
from credits import services as credits
from tasks import routing, sandboxes
from tasks.models import ACTIVE_STATUSES, FailureReason, Feedback, Sandbox, Status, Task, TaskEvent
from tasks.models import task_id as new_task_id
from tasks.selectors import is_assignee, is_caller, visible_to

SYSTEM = "system"


def _actor(principal: Principal | None) -> str:
    return principal.key if principal is not None else SYSTEM


def _record(task: Task, type_: str, *, actor: str, before: str, data: dict | None = None) -> None:
    TaskEvent.objects.create(
        task=task,
        type=type_,
        from_status=before,
        to_status=task.status,
        actor=actor,
        data=data or {},
    )


def _locked(principal: Principal, task_id: str) -> Task:
    """The task, locked, if the principal may see it; else 404 (no existence oracle)."""
    task = Task.objects.select_for_update().filter(visible_to(principal), pk=task_id).first()
    if task is None:
        raise NotFound(f"No such task: {task_id}", code="task_not_found")
    return task


def _locked_for_assignee(principal: Principal, task_id: str) -> Task:
    task = _locked(principal, task_id)
    if not is_assignee(task, principal):
        raise Forbidden("Only the task's assigned agent may do this.", code="not_assignee")
    return task


def _conflict(task: Task, action: str) -> Conflict:
    return Conflict(f"Cannot {action} a task in status {task.status}.", code=f"task_{task.status}")


def _on_commit_job(job, *args) -> None:
    # robust: the request has committed by then; a job that fails to enqueue (or, run eagerly,
    # fails) is logged and left to the sweep instead of turning a done action into a 500.
    transaction.on_commit(lambda: job.delay(*args), robust=True)


def _finished(task: Task) -> None:
    """A task reached a terminal status: the platform destroys its sandboxes."""
    from tasks import jobs

    if task.sandboxes.filter(status=Sandbox.Status.LIVE).exists():
        _on_commit_job(jobs.destroy_sandboxes, task.pk)


# Submit and assign


def _validate_hire(*, principal: Principal, agent_id: str, task_type: str, max_budget: int):
    agent = Agent.objects.filter(pk=agent_id, status=Agent.Status.ACTIVE).first()
    if agent is None:
        raise Invalid(f"No active agent {agent_id}.", code="agent_not_found", param="agentId")
    if principal.is_agent and agent.pk == principal.agent.pk:
        raise Invalid("An agent cannot hire itself.", code="cannot_hire_self", param="agentId")
    offer = AgentOffer.objects.filter(agent=agent, task_type=task_type).first()
    if offer is None:
        raise Invalid(
            f"Agent {agent_id} does not take {task_type} tasks.",
            code="agent_does_not_take_task_type",
            param="agentId",
        )
    if offer.price > max_budget:
        raise Invalid(
            f"Agent {agent_id} charges {offer.price} for {task_type}, above maxBudget "
            f"{max_budget}.",
            code="price_exceeds_budget",
            param="agentId",
        )
    return agent, offer.price


def _validate_parent(*, principal: Principal, parent_task_id: str) -> Task:
    if not principal.is_agent:
        raise Invalid(
            "parentTaskId is for agents sub-hiring from a task they execute.",
            code="parent_task_not_allowed",
            param="parentTaskId",
        )
    parent = Task.objects.filter(visible_to(principal), pk=parent_task_id).first()
    if parent is None or not is_assignee(parent, principal):
        raise Invalid(
            f"No task {parent_task_id} assigned to you.",
            code="parent_task_not_found",
            param="parentTaskId",
        )
    if parent.status != Status.EXECUTING:
        raise Conflict(
            f"Parent task {parent_task_id} is {parent.status}, not executing.",
            code="parent_task_not_executing",
        )
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
    """Create a task and hold its whole budget; a direct hire is assigned at once."""
    hire = None
    if agent_id is not None:
        hire = _validate_hire(
            principal=principal, agent_id=agent_id, task_type=task_type, max_budget=max_budget
        )
    parent = None
    if parent_task_id is not None:
        parent = _validate_parent(principal=principal, parent_task_id=parent_task_id)

    tid = new_task_id()
    payer = {"agent": principal.agent} if principal.is_agent else {"owner": principal.owner}
    try:
        hold = credits.hold_place(**payer, amount=max_budget, reference=f"task:{tid}", subject=tid)
    except credits.InsufficientCredits as exc:
        raise PaymentRequired(
            f"Insufficient credits: {exc.available} available, {max_budget} required.",
            code="insufficient_credits",
        ) from None
    task = Task.objects.create(
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
    )
    actor = _actor(principal)
    _record(task, "submit", actor=actor, before="", data={"maxBudget": max_budget})
    if hire is not None:
        agent, price = hire
        _assign(task, agent=agent, price=price, actor=actor, direct=True)
    else:
        from tasks import jobs

        _on_commit_job(jobs.route_task, task.pk)
    return task


@transaction.atomic
def task_route(*, task_id: str) -> Task | None:
    """Smart routing: pick an agent for an unassigned task, or leave it in ``routing``."""
    task = Task.objects.select_for_update().filter(pk=task_id).first()
    if task is None or task.agent_id is not None:
        return task
    if task.status == Status.SUBMITTED:
        task.route()
        task.save()
        _record(task, "route", actor=SYSTEM, before=Status.SUBMITTED)
    if task.status != Status.ROUTING:
        return task
    choice = routing.agent_pick(task)
    if choice is None:
        return task  # stays in routing; the sweep retries until ROUTING_TIMEOUT_SECONDS
    agent, price = choice
    _assign(task, agent=agent, price=price, actor=SYSTEM, direct=False)
    return task


def _assign(task: Task, *, agent: Agent, price: int, actor: str, direct: bool) -> None:
    before = task.status
    task.assign(agent=agent, price=price, at=timezone.now())
    task.save()
    _record(
        task,
        "assign",
        actor=actor,
        before=before,
        data={"agentId": agent.pk, "price": price, "direct": direct},
    )


# The assigned agent's actions


@transaction.atomic
def sandbox_provision(*, principal: Principal, task_id: str) -> Sandbox:
    task = _locked_for_assignee(principal, task_id)
    if task.status not in (Status.SUBMITTED, Status.EXECUTING):
        raise _conflict(task, "provision a sandbox for")
    if task.sandboxes.filter(status=Sandbox.Status.LIVE).exists():
        raise Conflict("This task already has a live sandbox.", code="sandbox_already_live")
    sandbox = Sandbox(task=task, provider=settings.SANDBOX_PROVIDER)
    try:
        sandbox.external_id = sandboxes.provider().create(sandbox_id=sandbox.pk, task=task)
    except sandboxes.SandboxError as exc:
        raise ServiceUnavailable(
            f"The sandbox provider failed: {exc}", code="sandbox_provider_error"
        ) from exc
    try:
        with transaction.atomic():
            sandbox.save(force_insert=True)
    except IntegrityError:
        sandboxes.provider().destroy(external_id=sandbox.external_id)
        raise Conflict(
            "This task already has a live sandbox.", code="sandbox_already_live"
        ) from None
    _record(
        task,
        "sandbox_provision",
        actor=_actor(principal),
        before=task.status,
        data={"sandboxId": sandbox.pk},
    )
    return sandbox


@transaction.atomic
def sandbox_destroy(*, principal: Principal, task_id: str, sandbox_id: str) -> bool:
    task = _locked_for_assignee(principal, task_id)
    sandbox = Sandbox.objects.select_for_update().filter(task=task, pk=sandbox_id).first()
    if sandbox is None:
        raise NotFound(f"No sandbox {sandbox_id} for this task.", code="sandbox_not_found")
    destroyed = _sandbox_destroy(sandbox)
    if destroyed:
        _record(
            task,
            "sandbox_destroy",
            actor=_actor(principal),
            before=task.status,
            data={"sandboxId": sandbox.pk},
        )
    return destroyed


def _sandbox_destroy(sandbox: Sandbox) -> bool:
    if sandbox.status == Sandbox.Status.DESTROYED:
        return False
    sandboxes.provider_for(sandbox.provider).destroy(external_id=sandbox.external_id)
    sandbox.status = Sandbox.Status.DESTROYED
    sandbox.destroyed_at = timezone.now()
    sandbox.save(update_fields=["status", "destroyed_at"])
    return True


@transaction.atomic
def sandboxes_destroy_for_task(*, task_id: str) -> int:
    """Destroy every live sandbox of a task (the platform's cleanup at a terminal status)."""
    live = Sandbox.objects.select_for_update().filter(task_id=task_id, status=Sandbox.Status.LIVE)
    return sum(_sandbox_destroy(sandbox) for sandbox in live)


@transaction.atomic
def task_start(*, principal: Principal, task_id: str, sandbox_id: str) -> Task:
    """markExecuting: the assigned agent starts work in the task's live sandbox."""
    task = _locked_for_assignee(principal, task_id)
    if not can_proceed(task.start):
        raise _conflict(task, "start")
    if not task.sandboxes.filter(pk=sandbox_id, status=Sandbox.Status.LIVE).exists():
        raise Invalid(
            f"{sandbox_id} is not this task's live sandbox.",
            code="sandbox_not_live",
            param="sandboxId",
        )
    # The agent row is the lock that makes the concurrency cap exact under parallel starts.
    agent = Agent.objects.select_for_update().get(pk=task.agent_id)
    executing = Task.objects.filter(agent=agent, status=Status.EXECUTING).count()
    if executing >= agent.max_concurrent:
        raise Conflict(
            f"Agent is at its limit of {agent.max_concurrent} executing tasks.",
            code="agent_at_capacity",
        )
    before = task.status
    task.start(sandbox_id=sandbox_id, at=timezone.now())
    task.save()
    _record(task, "start", actor=_actor(principal), before=before, data={"sandboxId": sandbox_id})
    return task


@transaction.atomic
def task_complete(
    *,
    principal: Principal,
    task_id: str,
    output: dict,
    execution_time_ms: int,
    quality_score: int | None = None,
) -> Task:
    """The agent delivers; the quality check runs as a job once this commits."""
    from tasks import jobs

    task = _locked_for_assignee(principal, task_id)
    if not can_proceed(task.complete):
        raise _conflict(task, "complete")
    before = task.status
    task.complete(output=output, execution_time_ms=execution_time_ms, self_reported=quality_score)
    task.save()
    _record(
        task,
        "complete",
        actor=_actor(principal),
        before=before,
        data={"executionTimeMs": execution_time_ms, "qualityScore": quality_score},
    )
    _on_commit_job(jobs.check_quality, task.pk)
    return task


@transaction.atomic
def task_fail(*, principal: Principal, task_id: str, reason: str, error_message: str = "") -> Task:
    """The assigned agent gives up; the whole hold goes back to the caller."""
    task = _locked_for_assignee(principal, task_id)
    if task.status not in (Status.SUBMITTED, Status.EXECUTING):
        raise _conflict(task, "fail")
    return _fail(task, reason=reason, error_message=error_message, actor=_actor(principal))


def _fail(task: Task, *, reason: str, error_message: str, actor: str) -> Task:
    before = task.status
    task.fail(reason=reason, error_message=error_message, at=timezone.now())
    task.save()
    credits.hold_release(hold=task.hold)
    _record(
        task,
        "fail",
        actor=actor,
        before=before,
        data={"reason": reason, "errorMessage": error_message},
    )
    _finished(task)
    return task


# The platform's actions


def task_quality_check(*, task_id: str) -> Task | None:
    """Score the output outside any lock (an evaluator may be slow), then pass or reject."""
    from tasks import quality

    task = Task.objects.filter(pk=task_id).first()
    if task is None or task.status != Status.QUALITY_CHECK:
        return task
    verdict = quality.evaluate(task)
    return _quality_apply(task_id=task_id, verdict=verdict)


@transaction.atomic
def _quality_apply(*, task_id: str, verdict) -> Task:
    task = Task.objects.select_for_update().get(pk=task_id)
    if task.status != Status.QUALITY_CHECK:
        return task  # another worker settled it first
    before = task.status
    now = timezone.now()
    data = {
        "score": verdict.score,
        "passScore": settings.QUALITY_PASS_SCORE,
        "reason": verdict.reason,
    }
    if verdict.passed:
        credits.hold_capture(hold=task.hold, price=task.price, payee=task.agent)
        task.pass_check(score=verdict.score, at=now)
        task.save()
        _record(task, "pass", actor=SYSTEM, before=before, data=data)
    else:
        credits.hold_release(hold=task.hold)
        task.reject(score=verdict.score, at=now)
        task.save()
        _record(task, "reject", actor=SYSTEM, before=before, data=data)
    _finished(task)
    return task


@transaction.atomic
def task_time_out(*, task_id: str, now=None) -> Task | None:
    """Fail a task that overstayed its status; a no-op if it moved on meanwhile."""
    now = now or timezone.now()
    task = Task.objects.select_for_update().filter(pk=task_id).first()
    if task is None or task.status not in ACTIVE_STATUSES:
        return task
    reason = timeout_reason(task, now)
    if reason is None:
        return task
    return _fail(task, reason=FailureReason.TIMEOUT, error_message=reason, actor=SYSTEM)


def timeout_reason(task: Task, now) -> str | None:
    def over(since, seconds: int) -> bool:
        return since is not None and (now - since).total_seconds() >= seconds

    if task.status == Status.EXECUTING and over(
        task.started_at, settings.EXECUTION_TIMEOUT_SECONDS
    ):
        return f"execution exceeded {settings.EXECUTION_TIMEOUT_SECONDS} s"
    if (
        task.status == Status.SUBMITTED
        and task.agent_id
        and over(task.assigned_at, settings.ASSIGNMENT_TIMEOUT_SECONDS)
    ):
        return f"the agent did not start within {settings.ASSIGNMENT_TIMEOUT_SECONDS} s"
    if task.agent_id is None and over(task.created_at, settings.ROUTING_TIMEOUT_SECONDS):
        return f"no agent took the task within {settings.ROUTING_TIMEOUT_SECONDS} s"
    return None


# The caller's actions


@transaction.atomic
def task_feedback(*, principal: Principal, task_id: str, feedback: str) -> tuple[Task, bool]:
    """Thumbs up or down, once. Down strictly before the deadline refunds the whole charge."""
    task = _locked(principal, task_id)
    if not is_caller(task, principal):
        raise Forbidden("Only the task's caller may give feedback.", code="not_caller")
    if task.feedback:
        raise Conflict("Feedback was already given for this task.", code="feedback_already_given")
    if task.status != Status.COMPLETED:
        raise _conflict(task, "give feedback on")
    now = timezone.now()
    task.feedback = feedback
    task.feedback_at = now
    task.save(update_fields=["feedback", "feedback_at", "updated_at"])
    actor = _actor(principal)
    _record(task, "feedback", actor=actor, before=task.status, data={"feedback": feedback})
    refunded = False
    if feedback == Feedback.DOWN and now < task.feedback_refund_deadline:
        hold = credits.refund_issue(
            hold=task.hold, amount=task.hold.refundable, reference=f"task:{task.pk}:refund:feedback"
        )
        before = task.status
        task.credits_refunded = hold.refunded
        task.refund()
        task.save()
        _record(
            task,
            "refund",
            actor=actor,
            before=before,
            data={"amount": hold.refunded, "via": "feedback"},
        )
        refunded = True
    return task, refunded
