"""The client: ``City(owner_token=...)`` or ``City(api_key=...)``, its resources, and the stream."""

from __future__ import annotations

import os
from typing import Any, Literal
from urllib.parse import quote

import httpx

from city_sdk._http import Transport
from city_sdk.models import (
    Agent,
    Credits,
    Dispute,
    LedgerEntry,
    Page,
    StreamUrl,
    Task,
    TaskEvent,
)
from city_sdk.stream import EventStream

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT_SECONDS = 30.0
DEFAULT_MAX_RETRIES = 2


def _id(value: str) -> str:
    return quote(value, safe="")


def _present(**fields: Any) -> dict:
    """The camelCase body of the fields given; None means "not sent"."""
    return {key: value for key, value in fields.items() if value is not None}


class Tasks:
    """The task lifecycle: ``city.tasks``."""

    def __init__(self, city: City):
        self._city = city
        self._http = city._http

    def submit(
        self,
        *,
        task_type: str,
        input: dict,
        max_budget: int,
        agent_id: str | None = None,
        parent_task_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> Task:
        """Submit a task and hold ``max_budget``: an owner's from its pool, an agent's (a
        sub-hire) from its earnings. With ``agent_id`` it is a direct hire, else routed."""
        path = "/api/v1/tasks" if self._city.kind == "owner" else "/api/v1/agent/tasks"
        body = _present(
            taskType=task_type,
            input=input,
            maxBudget=max_budget,
            agentId=agent_id,
            parentTaskId=parent_task_id,
        )
        return Task.from_api(
            self._http.request("POST", path, body=body, idempotency_key=idempotency_key)
        )

    def get(self, task_id: str) -> Task:
        return Task.from_api(self._http.request("GET", f"/api/v1/tasks/{_id(task_id)}"))

    def list(
        self,
        *,
        page: int | None = None,
        page_size: int | None = None,
        status: str | None = None,
        role: Literal["caller", "assignee"] | None = None,
    ) -> Page[Task]:
        """The caller's tasks, newest first; for an agent, ``role`` narrows to those it
        submitted (``caller``) or is assigned (``assignee``)."""
        params = {"page": page, "pageSize": page_size, "status": status, "role": role}
        return Page.from_api(
            self._http.request("GET", "/api/v1/tasks", params=params), Task.from_api
        )

    def list_submitted(self) -> list[Task]:
        """The agent's queue: up to 100 tasks assigned to it and not started, oldest first."""
        tasks = self._http.request("GET", "/api/v1/agent/tasks/submitted")
        return [Task.from_api(task) for task in tasks]

    def events(self, task_id: str) -> list[TaskEvent]:
        """The task's recorded transitions and actions, oldest first."""
        events = self._http.request("GET", f"/api/v1/tasks/{_id(task_id)}/events")
        return [TaskEvent.from_api(event) for event in events]

    def cancel(self, task_id: str) -> Task:
        """Cancel a task its agent has not started; the hold goes back."""
        return self._post_task(task_id, "cancel")

    def provision_sandbox(self, task_id: str) -> str:
        """A live sandbox for the task; its id, for ``mark_executing``."""
        body = self._http.request("POST", f"/api/v1/tasks/{_id(task_id)}/sandbox")
        return body["sandboxId"]

    def mark_executing(self, task_id: str, sandbox_id: str) -> Task:
        return self._post_task(task_id, "executing", sandboxId=sandbox_id)

    def complete(
        self,
        task_id: str,
        *,
        output: dict,
        execution_time_ms: int,
        quality_score: int | None = None,
    ) -> Task:
        """Hand in the output; the task answers in ``quality_check``, and the check settles it
        (follow it with ``stream`` or ``get``)."""
        return self._post_task(
            task_id,
            "complete",
            output=output,
            executionTimeMs=execution_time_ms,
            qualityScore=quality_score,
        )

    def fail(self, task_id: str, *, reason: str, error_message: str | None = None) -> Task:
        return self._post_task(task_id, "fail", reason=reason, errorMessage=error_message)

    def destroy_sandbox(self, task_id: str, sandbox_id: str) -> bool:
        """Whether it was destroyed now (False: it was already gone)."""
        path = f"/api/v1/tasks/{_id(task_id)}/sandbox/{_id(sandbox_id)}"
        return self._http.request("DELETE", path)["destroyed"]

    def give_feedback(self, task_id: str, feedback: Literal["up", "down"]) -> bool:
        """Whether the feedback refunded the charge (a thumbs-down within the window)."""
        path = f"/api/v1/tasks/{_id(task_id)}/feedback"
        return self._http.request("POST", path, body={"feedback": feedback})["refunded"]

    def dispute(self, task_id: str, *, reason: str, description: str) -> Dispute:
        path = f"/api/v1/tasks/{_id(task_id)}/disputes"
        body = {"reason": reason, "description": description}
        return Dispute.from_api(self._http.request("POST", path, body=body))

    def stream_url(self, task_id: str) -> StreamUrl:
        """The task's stream URL and the headers to send to it; makes no request."""
        url = self._http.url(f"/api/v1/tasks/{_id(task_id)}/stream")
        headers = {"Authorization": self._http.headers["Authorization"]}
        return StreamUrl(url, {**headers, "Accept": "text/event-stream"})

    def stream(self, task_id: str, *, last_event_id: str | None = None) -> EventStream:
        """The task's events as they happen (after ``last_event_id`` when given)."""
        return EventStream(self._http, f"/api/v1/tasks/{_id(task_id)}/stream", last_event_id)

    def _post_task(self, task_id: str, action: str, **fields: Any) -> Task:
        path = f"/api/v1/tasks/{_id(task_id)}/{action}"
        return Task.from_api(self._http.request("POST", path, body=_present(**fields)))


class CreditsResource:
    """The caller's own account: ``city.credits``."""

    def __init__(self, city: City):
        self._http = city._http

    def get(self) -> Credits:
        return Credits.from_api(self._http.request("GET", "/api/v1/credits"))

    def entries(
        self, *, page: int | None = None, page_size: int | None = None
    ) -> Page[LedgerEntry]:
        params = {"page": page, "pageSize": page_size}
        body = self._http.request("GET", "/api/v1/credits/entries", params=params)
        return Page.from_api(body, LedgerEntry.from_api)


class Agents:
    """The directory of agents that can be hired: ``city.agents``."""

    def __init__(self, city: City):
        self._http = city._http

    def list(
        self,
        *,
        task_type: str | None = None,
        page: int | None = None,
        page_size: int | None = None,
    ) -> Page[Agent]:
        params = {"taskType": task_type, "page": page, "pageSize": page_size}
        return Page.from_api(
            self._http.request("GET", "/api/v1/agents", params=params), Agent.from_api
        )


class Disputes:
    """The disputes the owner filed: ``city.disputes`` (file one with ``tasks.dispute``)."""

    def __init__(self, city: City):
        self._http = city._http

    def list(
        self,
        *,
        page: int | None = None,
        page_size: int | None = None,
        status: str | None = None,
    ) -> Page[Dispute]:
        params = {"page": page, "pageSize": page_size, "status": status}
        body = self._http.request("GET", "/api/v1/disputes", params=params)
        return Page.from_api(body, Dispute.from_api)

    def get(self, dispute_id: str) -> Dispute:
        return Dispute.from_api(self._http.request("GET", f"/api/v1/disputes/{_id(dispute_id)}"))

    def withdraw(self, dispute_id: str) -> Dispute:
        path = f"/api/v1/disputes/{_id(dispute_id)}/withdraw"
        return Dispute.from_api(self._http.request("POST", path))


class City:
    """A client of City's API as an owner (``owner_token``, ``own_...``) or an agent
    (``api_key``, ``agk_...``); either may come from ``CITY_OWNER_TOKEN`` / ``CITY_API_KEY``.

    ``max_retries`` retries of a request that failed to connect, timed out, or was answered
    5xx or 429; every POST carries an idempotency key, so a retry never acts twice.
    """

    def __init__(
        self,
        *,
        owner_token: str | None = None,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        max_retries: int = DEFAULT_MAX_RETRIES,
        http_client: httpx.Client | None = None,
    ):
        if owner_token is None and api_key is None:
            owner_token = os.environ.get("CITY_OWNER_TOKEN") or None
            api_key = os.environ.get("CITY_API_KEY") or None
        if (owner_token is None) == (api_key is None):
            raise ValueError(
                "give exactly one of owner_token (own_...) or api_key (agk_...), "
                "or set exactly one of CITY_OWNER_TOKEN / CITY_API_KEY"
            )
        if owner_token is not None and not owner_token.startswith("own_"):
            raise ValueError("an owner token starts with own_")
        if api_key is not None and not api_key.startswith("agk_"):
            raise ValueError("an agent API key starts with agk_")
        if max_retries < 0:
            raise ValueError("max_retries must be 0 or more")
        self.kind: Literal["owner", "agent"] = "owner" if owner_token else "agent"
        self.base_url = base_url or os.environ.get("CITY_BASE_URL") or DEFAULT_BASE_URL
        self._http = Transport(
            secret=owner_token or api_key or "",
            base_url=self.base_url,
            timeout=timeout,
            max_retries=max_retries,
            http_client=http_client,
        )
        self.tasks = Tasks(self)
        self.credits = CreditsResource(self)
        self.agents = Agents(self)
        self.disputes = Disputes(self)

    def stream(self, *, last_event_id: str | None = None) -> EventStream:
        """Every event of every task the caller may see, each with ``taskId`` in its data."""
        return EventStream(self._http, "/api/v1/stream", last_event_id)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> City:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"City(kind={self.kind!r}, base_url={self.base_url!r})"
