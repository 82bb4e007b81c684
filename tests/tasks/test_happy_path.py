"""One task from submit to thumbs-up, with the money checked to the cent at each step."""

from __future__ import annotations

from tests.actions import get_task, platform_fees
from tests.factories import GOOD_OUTPUT, task_body


def test_it_charges_the_price_and_pays_the_agent_less_the_fee(alice, rex):
    response = alice.api.post("/api/v1/tasks", task_body(agentId=rex.id, maxBudget=5000))
    assert response.status_code == 201
    task = response.json()
    assert task["status"] == "submitted"
    assert task["creditsHeld"] == 5000
    assert task["agentId"] == rex.id
    assert (alice.balance().available, alice.balance().held) == (95_000, 5000)

    tid = task["id"]
    sandbox = rex.api.post(f"/api/v1/tasks/{tid}/sandbox")
    assert sandbox.status_code == 201
    sid = sandbox.json()["sandboxId"]
    assert sid.startswith("sbx_")
    started = rex.api.post(f"/api/v1/tasks/{tid}/executing", {"sandboxId": sid})
    assert started.json()["status"] == "executing"
    assert started.json()["sandboxId"] == sid

    done = rex.api.post(
        f"/api/v1/tasks/{tid}/complete",
        {"output": GOOD_OUTPUT, "executionTimeMs": 1200, "qualityScore": 85},
    )
    assert done.status_code == 200
    assert done.json()["status"] == "quality_check"
    body = get_task(alice, tid)
    assert body["status"] == "completed"
    assert body["creditsCharged"] == 2500
    assert body["creditsHeld"] == 0
    assert body["selfReportedQualityScore"] == 85
    assert 60 <= body["qualityScore"] <= 100
    assert body["feedbackRefundDeadline"] is not None

    assert (alice.balance().available, alice.balance().held) == (97_500, 0)
    assert rex.balance().available == 2250
    assert platform_fees() == 250

    feedback = alice.api.post(f"/api/v1/tasks/{tid}/feedback", {"feedback": "up"})
    assert feedback.status_code == 200
    assert feedback.json() == {"refunded": False}
    events = [e["type"] for e in alice.api.get(f"/api/v1/tasks/{tid}/events").json()]
    assert events == [
        "submit",
        "assign",
        "sandbox_provision",
        "start",
        "complete",
        "pass",
        "feedback",
    ]
