"""What the API answers, as dataclasses with snake_case fields; each keeps the body as ``raw``."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, NamedTuple, TypeVar

T = TypeVar("T")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    return datetime.fromisoformat(re.sub(r"Z$", "+00:00", value))


def _build(cls: type[T], body: dict, times: tuple[str, ...] = (), **keys: str) -> T:
    """``cls`` from a camelCase body: each field reads its camelCase key (or ``keys[name]``),
    the fields in ``times`` parsed as datetimes; a ``raw`` field gets the whole body."""
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name == "raw":
            values["raw"] = body
            continue
        value = body.get(keys.get(f.name, _camel(f.name)))
        values[f.name] = _time(value) if f.name in times else value
    return cls(**values)


@dataclass(frozen=True)
class Task:
    id: str
    task_type: str
    status: str
    input: dict
    output: Any
    max_budget: int
    credits_held: int
    credits_charged: int | None
    credits_refunded: int
    agent_id: str | None
    parent_task_id: str | None
    sandbox_id: str | None
    quality_score: int | None
    quality_reasons: list[str]
    self_reported_quality_score: int | None
    execution_time_ms: int | None
    failure_reason: str | None
    error_message: str | None
    feedback: str | None
    feedback_refund_deadline: datetime | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    raw: dict = field(repr=False)

    @classmethod
    def from_api(cls, body: dict) -> Task:
        times = ("feedback_refund_deadline", "created_at", "updated_at", "started_at")
        return _build(cls, body, (*times, "completed_at"))


@dataclass(frozen=True)
class TaskEvent:
    """A recorded transition or action of a task (``GET /tasks/{id}/events``)."""

    id: int
    type: str
    from_status: str | None
    to_status: str | None
    actor: str
    data: dict
    created_at: datetime
    raw: dict = field(repr=False)

    @classmethod
    def from_api(cls, body: dict) -> TaskEvent:
        return _build(cls, body, ("created_at",), from_status="from", to_status="to")


@dataclass(frozen=True)
class Pagination:
    page: int
    page_size: int
    total: int
    total_pages: int


@dataclass(frozen=True)
class Page(Generic[T]):
    data: list[T]
    pagination: Pagination

    @classmethod
    def from_api(cls, body: dict, item) -> Page:
        return cls([item(x) for x in body["data"]], _build(Pagination, body["pagination"]))


@dataclass(frozen=True)
class Credits:
    """The caller's own account (an agent's is its earnings), in cents."""

    available: int
    held: int
    total: int

    @classmethod
    def from_api(cls, body: dict) -> Credits:
        return _build(cls, body)


@dataclass(frozen=True)
class LedgerEntry:
    id: str
    amount: int  # signed: positive into the account
    kind: str
    task_id: str | None
    balance_after: int
    created_at: datetime
    raw: dict = field(repr=False)

    @classmethod
    def from_api(cls, body: dict) -> LedgerEntry:
        return _build(cls, body, ("created_at",))


@dataclass(frozen=True)
class AgentOffer:
    task_type: str
    price: int


@dataclass(frozen=True)
class Agent:
    id: str
    name: str
    task_types: list[AgentOffer]
    rating: int | None
    completed_tasks: int
    raw: dict = field(repr=False)

    @classmethod
    def from_api(cls, body: dict) -> Agent:
        offers = [_build(AgentOffer, offer) for offer in body.get("taskTypes") or []]
        return dataclasses.replace(_build(cls, body), task_types=offers)


@dataclass(frozen=True)
class Dispute:
    id: str
    task_id: str
    status: str
    reason: str | None
    description: str | None
    due_by: datetime | None
    refunded_amount: int | None
    decision_note: str | None
    created_at: datetime | None
    resolved_at: datetime | None
    raw: dict = field(repr=False)

    @classmethod
    def from_api(cls, body: dict) -> Dispute:
        return _build(cls, body, ("due_by", "created_at", "resolved_at"))


class StreamUrl(NamedTuple):
    """Where a task's Server-Sent Events are, and the headers to send: ``url, headers = ...``."""

    url: str
    headers: dict[str, str]


@dataclass(frozen=True)
class Event:
    """One Server-Sent Event: ``status``, ``complete``, ``error``, ``feedback``, ``dispute`` or
    ``refund``. ``id`` is None on the records of a group before its last."""

    event: str
    id: str | None
    data: dict

    @property
    def task_id(self) -> str | None:
        return self.data.get("taskId")
