"""Tasks, their recorded transitions, and their sandboxes.

A task's ``status`` is a protected FSM field: only the ``@transition`` methods below change it,
and they only check guards and set fields on ``self``. Moving money, recording the
``TaskEvent``, enqueueing jobs: that is ``tasks.services``' work, in one transaction per action.

The caller is an owner, or an agent sub-hiring with its earnings. ``price`` is agreed when the
task is assigned (the agent's price for the task type, never above ``max_budget``) and is what
the caller is charged on completion.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, models
from django.db.models import Q
from django_fsm import FSMField, transition

from city.api.prepared import Update
from city.identity.ids import random_id
from city.identity.models import Agent, Owner
from credits.models import Hold

# The largest budget a task may carry, in cents (API.md).
MAX_BUDGET = 1_000_000_000_000


def task_id() -> str:
    return random_id("", 25)


def sandbox_id() -> str:
    return random_id("sbx_")


class Status(models.TextChoices):
    SUBMITTED = "submitted"
    ROUTING = "routing"
    EXECUTING = "executing"
    QUALITY_CHECK = "quality_check"
    COMPLETED = "completed"
    FAILED = "failed"
    REFUNDED = "refunded"


ACTIVE_STATUSES = (Status.SUBMITTED, Status.ROUTING, Status.EXECUTING)
TERMINAL_STATUSES = (Status.COMPLETED, Status.FAILED, Status.REFUNDED)


class FailureReason(models.TextChoices):
    QUALITY_GATE = "quality_gate"
    EXECUTION_ERROR = "execution_error"
    TIMEOUT = "timeout"
    BUDGET_EXCEEDED = "budget_exceeded"
    CANCELLED = "cancelled"  # only through the caller's cancel


# The reasons an agent may give when it fails a task (``cancelled`` is the caller's).
AGENT_FAILURE_REASONS = [r for r in FailureReason.values if r != FailureReason.CANCELLED]


class Feedback(models.TextChoices):
    UP = "up"
    DOWN = "down"


class ProtectedStatusRefresh(models.Model):
    """For a model whose ``status`` is a protected FSMField: a refresh that works under threads.

    django-fsm's FSMModelMixin unprotects the status field class-wide while it refreshes, so a
    concurrent refresh in another thread raised "Direct status modification is not allowed".
    Forgetting this instance's status lets the protected field be loaded again.
    """

    class Meta:
        abstract = True

    def refresh_from_db(self, *args, **kwargs) -> None:
        self.__dict__.pop("status", None)
        super().refresh_from_db(*args, **kwargs)


class Task(ProtectedStatusRefresh):
    id = models.CharField(primary_key=True, max_length=32, default=task_id, editable=False)
    task_type = models.CharField(max_length=64)
    status = FSMField(default=Status.SUBMITTED, choices=Status.choices, protected=True)
    input = models.JSONField()
    output = models.JSONField(null=True, blank=True)
    max_budget = models.BigIntegerField()
    price = models.BigIntegerField(null=True, blank=True)

    # Not indexed alone: each leads one of the lists' indexes (Meta.indexes), which serve its
    # lookups too; an index of its own would only cost every task write one more entry.
    caller_owner = models.ForeignKey(
        Owner, models.PROTECT, null=True, blank=True, related_name="tasks_submitted", db_index=False
    )
    caller_agent = models.ForeignKey(
        Agent, models.PROTECT, null=True, blank=True, related_name="tasks_submitted", db_index=False
    )
    agent = models.ForeignKey(
        Agent, models.PROTECT, null=True, blank=True, related_name="tasks_assigned", db_index=False
    )
    direct_hire = models.BooleanField(default=False)
    # Routing: since when the task waits for an agent (its creation, or the moment a routed
    # agent that never started was taken off it), how often it was tried, when next, and the
    # agents taken off it, which it is never routed to again.
    routing_since = models.DateTimeField(null=True, blank=True)
    route_attempts = models.PositiveIntegerField(default=0)
    next_route_at = models.DateTimeField(null=True, blank=True)
    excluded_agent_ids = models.JSONField(default=list, blank=True)
    # input.timeoutSeconds, when the caller set one: the execution timeout, capped by
    # EXECUTION_TIMEOUT_SECONDS.
    execution_timeout = models.DurationField(null=True, blank=True)
    parent = models.ForeignKey(
        "self", models.PROTECT, null=True, blank=True, related_name="subtasks"
    )
    hold = models.OneToOneField(Hold, models.PROTECT, null=True, blank=True, related_name="task")
    sandbox_id = models.CharField(max_length=32, blank=True, help_text="the sandbox it started in")

    credits_held = models.BigIntegerField(default=0)
    credits_charged = models.BigIntegerField(null=True, blank=True)
    credits_refunded = models.BigIntegerField(default=0)

    quality_score = models.PositiveSmallIntegerField(null=True, blank=True)
    quality_reasons = models.JSONField(default=list, blank=True)
    self_reported_quality_score = models.PositiveSmallIntegerField(null=True, blank=True)
    execution_time_ms = models.BigIntegerField(null=True, blank=True)
    failure_reason = models.CharField(max_length=32, choices=FailureReason.choices, blank=True)
    error_message = models.TextField(blank=True)
    feedback = models.CharField(max_length=4, choices=Feedback.choices, blank=True)
    feedback_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    assigned_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # An owner's list, newest first, in exactly its ORDER BY (``-created_at``, ``-id``):
            # a page is read off the index in order, with nothing to sort, whatever the
            # number of tasks; and per status, so that a status the owner rarely has is not
            # found by walking past all the others. Its totals come from the tally
            # (``tasks.selectors.task_total``).
            models.Index(fields=["caller_owner", "-created_at", "-id"], name="task_owner_newest"),
            models.Index(
                fields=["caller_owner", "status", "-created_at", "-id"],
                name="task_owner_status_newest",
            ),
            # An agent's lists, newest first: the tasks it hired, those assigned to it (with and
            # without a status; the status one also serves its queue, oldest first).
            models.Index(fields=["caller_agent", "-created_at", "-id"], name="task_hirer_newest"),
            models.Index(fields=["agent", "-created_at", "-id"], name="task_agent_newest"),
            models.Index(
                fields=["agent", "status", "-created_at", "-id"], name="task_agent_status_newest"
            ),
            models.Index(fields=["status", "updated_at"]),
            models.Index(fields=["status", "next_route_at"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(caller_owner__isnull=False, caller_agent__isnull=True)
                | Q(caller_owner__isnull=True, caller_agent__isnull=False),
                name="task_has_one_caller",
            ),
            models.CheckConstraint(condition=Q(max_budget__gte=1), name="task_budget_positive"),
            models.CheckConstraint(
                condition=Q(price__isnull=True) | Q(price__lte=models.F("max_budget")),
                name="task_price_within_budget",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.task_type} {self.id} ({self.status})"

    # Written once, at the INSERT: an UPDATE never needs to send them again (``input`` may be
    # a megabyte).
    WRITTEN_ONCE = frozenset(
        {
            "id",
            "task_type",
            "input",
            "max_budget",
            "caller_owner",
            "caller_agent",
            "parent",
            "hold",
            "direct_hire",
            "created_at",
        }
    )

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding and not args and not kwargs:
            # Every change to a task saves it this way: the UPDATE is built once.
            if _update_task(self) != 1:
                raise DatabaseError("Save with update_fields did not affect any rows.")
            return
        if not self._state.adding and not args and "update_fields" not in kwargs:
            kwargs["update_fields"] = self.rewritable_fields()
        super().save(*args, **kwargs)

    @classmethod
    def rewritable_fields(cls) -> list[str]:
        return [f.name for f in cls._meta.concrete_fields if f.name not in cls.WRITTEN_ONCE]

    @property
    def feedback_refund_deadline(self):
        if self.completed_at is None:
            return None
        return self.completed_at + timedelta(seconds=settings.FEEDBACK_REFUND_WINDOW_SECONDS)

    def is_unassigned(self) -> bool:
        return self.agent_id is None

    def is_assigned(self) -> bool:
        return self.agent_id is not None

    # Transitions: guards and fields on self only.

    @transition(status, source=Status.SUBMITTED, target=Status.ROUTING, conditions=[is_unassigned])
    def route(self) -> None:
        pass

    @transition(
        status,
        source=[Status.SUBMITTED, Status.ROUTING],
        target=Status.SUBMITTED,
        conditions=[is_unassigned],
    )
    def assign(self, *, agent: Agent, price: int, at) -> None:
        self.agent = agent
        self.price = price
        self.assigned_at = at

    @transition(status, source=Status.SUBMITTED, target=Status.ROUTING, conditions=[is_assigned])
    def unassign(self, *, at) -> None:
        """A routed agent that never started is taken off the task, never to get it again."""
        self.excluded_agent_ids = [*self.excluded_agent_ids, self.agent_id]
        self.agent = None
        self.price = None
        self.assigned_at = None
        self.routing_since = at
        self.route_attempts = 0
        self.next_route_at = None

    @transition(status, source=Status.SUBMITTED, target=Status.EXECUTING, conditions=[is_assigned])
    def start(self, *, sandbox_id: str, at) -> None:
        self.sandbox_id = sandbox_id
        self.started_at = at

    @transition(status, source=Status.EXECUTING, target=Status.QUALITY_CHECK)
    def complete(self, *, output, execution_time_ms: int, self_reported: int | None) -> None:
        self.output = output
        self.execution_time_ms = execution_time_ms
        self.self_reported_quality_score = self_reported

    @transition(status, source=Status.QUALITY_CHECK, target=Status.COMPLETED)
    def pass_check(self, *, score: int, reasons: list[str], at) -> None:
        self.quality_score = score
        self.quality_reasons = reasons
        self.credits_held = 0
        self.credits_charged = self.price
        self.completed_at = at
        self.finished_at = at

    @transition(status, source=Status.QUALITY_CHECK, target=Status.FAILED)
    def reject(self, *, score: int, reasons: list[str], at) -> None:
        self.quality_score = score
        self.quality_reasons = reasons
        self.credits_held = 0
        self.failure_reason = FailureReason.QUALITY_GATE
        self.error_message = f"quality score {score} is below {settings.QUALITY_PASS_SCORE}"
        self.finished_at = at

    @transition(status, source=list(ACTIVE_STATUSES), target=Status.FAILED)
    def fail(self, *, reason: str, error_message: str, at) -> None:
        self.credits_held = 0
        self.failure_reason = reason
        self.error_message = error_message
        self.finished_at = at

    @transition(status, source=[Status.SUBMITTED, Status.ROUTING], target=Status.FAILED)
    def cancel(self, *, at) -> None:
        """The caller takes the task back before its agent started."""
        self.credits_held = 0
        self.failure_reason = FailureReason.CANCELLED
        self.error_message = "cancelled by the caller"
        self.finished_at = at

    @transition(status, source=Status.COMPLETED, target=Status.REFUNDED)
    def refund(self) -> None:
        pass


_update_task = Update(Task, Task.rewritable_fields)


class TaskEvent(models.Model):
    """An append-only record of every transition and action on a task."""

    task = models.ForeignKey(Task, models.CASCADE, related_name="events")
    type = models.CharField(max_length=32)
    from_status = models.CharField(max_length=16, blank=True)
    to_status = models.CharField(max_length=16, blank=True)
    actor = models.CharField(max_length=64, help_text="owner:<id>, agent:<id> or system")
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["task", "id"])]

    def __str__(self) -> str:
        return f"{self.type} {self.from_status}→{self.to_status}"


class Sandbox(models.Model):
    class Status(models.TextChoices):
        LIVE = "live"
        DESTROYED = "destroyed"

    id = models.CharField(primary_key=True, max_length=32, default=sandbox_id, editable=False)
    task = models.ForeignKey(Task, models.CASCADE, related_name="sandboxes")
    provider = models.CharField(max_length=16)
    external_id = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.LIVE)
    created_at = models.DateTimeField(auto_now_add=True)
    destroyed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "sandboxes"
        constraints = [
            # One live sandbox per task, enforced by the database too.
            models.UniqueConstraint(
                fields=["task"], condition=Q(status="live"), name="sandbox_one_live_per_task"
            )
        ]

    def __str__(self) -> str:
        return self.id
