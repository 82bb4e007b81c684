"""A response is what the request's own transaction committed: the same whether the jobs that
follow it run in-process (eager, the embedded default) or on a worker later."""

from __future__ import annotations

import pytest

from tasks import events, jobs
from tests.factories import GOOD_OUTPUT, task_body

VOLATILE = {"id", "createdAt", "updatedAt", "startedAt"}


@pytest.fixture
def on_a_worker(monkeypatch):
    """As with REDIS_URL set: after commit the jobs are only enqueued, here recorded."""
    queued: list[str] = []
    hooks = [h for h in events._hooks if h is not jobs.enqueue_after]
    monkeypatch.setattr(
        events, "_hooks", [*hooks, lambda recorded: queued.extend(e.type for e in recorded)]
    )
    return queued


def stable(task: dict) -> dict:
    return {key: value for key, value in task.items() if key not in VOLATILE}


def submit_routed(alice) -> dict:
    response = alice.api.post("/api/v1/tasks", task_body())
    assert response.status_code == 201
    return response.json()


def test_it_answers_a_routed_submit_alike_in_both_modes(alice, rex, on_a_worker):
    queued = submit_routed(alice)
    assert on_a_worker == ["submit"]

    events._hooks.append(jobs.enqueue_after)  # eager again: routing runs after the commit
    eager = submit_routed(alice)

    assert stable(queued) == stable(eager)
    assert (eager["status"], eager["agentId"]) == ("submitted", None)
    # ... and the eager routing did run once the request committed.
    assert alice.api.get(f"/api/v1/tasks/{eager['id']}").json()["agentId"] == rex.id


def test_it_answers_a_hand_in_in_quality_check_in_both_modes(executing, rex, alice):
    response = rex.api.post(
        f"/api/v1/tasks/{executing['id']}/complete",
        {"output": GOOD_OUTPUT, "executionTimeMs": 1200},
    )

    assert response.status_code == 200
    assert (response.json()["status"], response.json()["qualityScore"]) == ("quality_check", None)
    settled = alice.api.get(f"/api/v1/tasks/{executing['id']}").json()
    assert settled["status"] == "completed"
    assert settled["qualityReasons"]
