"""The assigned agent's actions: provisionSandbox, destroySandbox, markExecuting, complete, fail."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks import jobs
from tasks.models import Sandbox, Task
from tests.actions import (
    entries,
    event_types,
    fail,
    get_task,
    hand_in,
    hand_in_and_get,
    platform_fees,
    provision_sandbox,
    start,
    submit,
)
from tests.concurrency import run_together
from tests.factories import GOOD_OUTPUT, error_of, make_agent


def sandbox_dir(settings, sid: str) -> Path:
    return Path(settings.SANDBOX_ROOT) / sid


@pytest.fixture
def failed(submitted, rex):
    return fail(rex, submitted["id"])


# provisionSandbox


def test_it_provisions_a_live_sandbox_for_a_submitted_task(submitted, rex, alice, settings):
    tid = submitted["id"]
    response = rex.api.post(f"/api/v1/tasks/{tid}/sandbox")
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"sandboxId"}
    sid = body["sandboxId"]
    assert sid.startswith("sbx_")
    sandbox = Sandbox.objects.get(pk=sid)
    assert (sandbox.task_id, sandbox.status, sandbox.provider) == (tid, "live", "local")
    assert sandbox_dir(settings, sid).is_dir()
    events = rex.api.get(f"/api/v1/tasks/{tid}/events").json()
    assert events[-1]["type"] == "sandbox_provision"
    assert events[-1]["actor"] == f"agent:{rex.id}"
    assert events[-1]["data"] == {"sandboxId": sid}
    # Provisioning moves no state and no money.
    assert rex.api.get(f"/api/v1/tasks/{tid}").json()["status"] == "submitted"
    assert (alice.balance().available, alice.balance().held) == (95_000, 5000)
    assert rex.balance().available == 0


def test_it_refuses_a_second_live_sandbox(submitted, rex):
    tid = submitted["id"]
    first = provision_sandbox(rex, tid)
    response = rex.api.post(f"/api/v1/tasks/{tid}/sandbox")
    assert response.status_code == 409
    assert error_of(response)["code"] == "sandbox_already_live"
    assert list(Sandbox.objects.filter(task_id=tid).values_list("pk", flat=True)) == [first]


def test_it_provisions_a_new_sandbox_for_an_executing_task_after_the_first_is_destroyed(
    executing, rex
):
    tid, first = executing["id"], executing["sandboxId"]
    assert rex.api.post(f"/api/v1/tasks/{tid}/sandbox").status_code == 409
    assert rex.api.delete(f"/api/v1/tasks/{tid}/sandbox/{first}").json() == {"destroyed": True}

    response = rex.api.post(f"/api/v1/tasks/{tid}/sandbox")
    assert response.status_code == 201
    second = response.json()["sandboxId"]
    assert second != first
    assert dict(Sandbox.objects.filter(task_id=tid).values_list("pk", "status")) == {
        first: "destroyed",
        second: "live",
    }


@pytest.mark.parametrize("state", ["completed", "failed"])
def test_it_refuses_a_sandbox_for_a_finished_task(request, rex, state):
    task = request.getfixturevalue(state)
    response = rex.api.post(f"/api/v1/tasks/{task['id']}/sandbox")
    assert response.status_code == 409
    assert error_of(response)["code"] == f"task_{state}"
    assert not Sandbox.objects.filter(task_id=task["id"], status="live").exists()


def test_it_refuses_an_unknown_parameter_to_provision(submitted, rex):
    response = rex.api.post(f"/api/v1/tasks/{submitted['id']}/sandbox", {"image": "ubuntu"})
    assert response.status_code == 400
    error = error_of(response)
    assert (error["code"], error["param"]) == ("unknown_parameter", "image")
    assert not Sandbox.objects.exists()


@pytest.mark.parametrize(
    "action",
    [
        ("post", "sandbox", None),
        ("post", "executing", {"sandboxId": "sbx_x"}),
        ("post", "complete", {"output": GOOD_OUTPUT, "executionTimeMs": 1}),
        ("post", "fail", {"reason": "execution_error"}),
        ("delete", "sandbox/sbx_x", None),
    ],
    ids=lambda a: a[1],
)
def test_it_hides_the_task_from_an_agent_that_is_not_assigned(submitted, zed, action):
    method, path, body = action
    url = f"/api/v1/tasks/{submitted['id']}/{path}"
    response = zed.api.post(url, body) if method == "post" else zed.api.delete(url)
    assert response.status_code == 404
    assert error_of(response)["code"] == "task_not_found"
    assert Task.objects.get(pk=submitted["id"]).status == "submitted"


@pytest.mark.postgres
def test_it_grants_one_of_two_concurrent_provisions(postgres, submitted, rex):
    tid = submitted["id"]
    results = run_together(
        [
            lambda: rex.api.post(f"/api/v1/tasks/{tid}/sandbox"),
            lambda: rex.api.post(f"/api/v1/tasks/{tid}/sandbox"),
        ]
    )
    assert sorted(r.status_code for r in results) == [201, 409]
    assert Sandbox.objects.filter(task_id=tid, status="live").count() == 1


# destroySandbox


def test_it_destroys_a_sandbox_once(executing, rex, settings):
    tid, sid = executing["id"], executing["sandboxId"]
    assert sandbox_dir(settings, sid).is_dir()

    response = rex.api.delete(f"/api/v1/tasks/{tid}/sandbox/{sid}")
    assert response.status_code == 200
    assert response.json() == {"destroyed": True}
    sandbox = Sandbox.objects.get(pk=sid)
    assert sandbox.status == "destroyed"
    assert sandbox.destroyed_at is not None
    assert not sandbox_dir(settings, sid).exists()

    again = rex.api.delete(f"/api/v1/tasks/{tid}/sandbox/{sid}")
    assert again.status_code == 200
    assert again.json() == {"destroyed": False}
    assert event_types(rex, tid).count("sandbox_destroy") == 1
    # The task itself carries on.
    assert rex.api.get(f"/api/v1/tasks/{tid}").json()["status"] == "executing"


def test_it_answers_404_for_an_unknown_sandbox(executing, rex):
    response = rex.api.delete(f"/api/v1/tasks/{executing['id']}/sandbox/sbx_nosuchsandbox")
    assert response.status_code == 404
    assert error_of(response)["code"] == "sandbox_not_found"


def test_it_answers_404_for_a_sandbox_of_another_task(alice, rex, submitted):
    other = submit(alice, agentId=rex.id)
    foreign = provision_sandbox(rex, other["id"])
    response = rex.api.delete(f"/api/v1/tasks/{submitted['id']}/sandbox/{foreign}")
    assert response.status_code == 404
    assert error_of(response)["code"] == "sandbox_not_found"
    assert Sandbox.objects.get(pk=foreign).status == "live"


def test_it_lets_the_assignee_destroy_a_sandbox_of_a_submitted_task(submitted, rex):
    tid = submitted["id"]
    sid = provision_sandbox(rex, tid)
    response = rex.api.delete(f"/api/v1/tasks/{tid}/sandbox/{sid}")
    assert response.status_code == 200
    assert response.json() == {"destroyed": True}
    assert Task.objects.get(pk=tid).status == "submitted"


@pytest.mark.parametrize("state", ["completed", "failed_from_executing"])
def test_it_lets_the_assignee_destroy_a_sandbox_of_a_finished_task(executing, rex, state):
    tid, sid = executing["id"], executing["sandboxId"]
    if state == "completed":
        assert hand_in_and_get(rex, tid)["status"] == "completed"
    else:
        fail(rex, tid)
    # The platform already destroyed it at the terminal status; the agent's call still answers.
    response = rex.api.delete(f"/api/v1/tasks/{tid}/sandbox/{sid}")
    assert response.status_code == 200
    assert response.json() == {"destroyed": False}


# markExecuting


def test_it_marks_a_task_executing_in_its_live_sandbox(submitted, rex, alice):
    tid = submitted["id"]
    sid = provision_sandbox(rex, tid)
    response = rex.api.post(f"/api/v1/tasks/{tid}/executing", {"sandboxId": sid})
    assert response.status_code == 200
    task = response.json()
    assert task["status"] == "executing"
    assert task["sandboxId"] == sid
    assert task["startedAt"] is not None
    assert task["creditsHeld"] == 5000
    events = rex.api.get(f"/api/v1/tasks/{tid}/events").json()
    assert (events[-1]["type"], events[-1]["from"], events[-1]["to"]) == (
        "start",
        "submitted",
        "executing",
    )
    assert events[-1]["actor"] == f"agent:{rex.id}"
    assert (alice.balance().available, alice.balance().held) == (95_000, 5000)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, "sandbox_id_required"),
        ({"sandboxId": ""}, "sandbox_id_required"),
        ({"sandboxId": None}, "sandbox_id_required"),
        ({"sandboxId": 7}, "sandbox_id_invalid"),
    ],
)
def test_it_requires_a_sandbox_id_to_start(submitted, rex, body, code):
    tid = submitted["id"]
    provision_sandbox(rex, tid)
    response = rex.api.post(f"/api/v1/tasks/{tid}/executing", body)
    assert response.status_code == 400
    error = error_of(response)
    assert (error["type"], error["code"], error["param"]) == ("validation_error", code, "sandboxId")
    assert Task.objects.get(pk=tid).status == "submitted"


def test_it_refuses_to_start_in_another_tasks_sandbox(alice, rex, submitted):
    tid = submitted["id"]
    provision_sandbox(rex, tid)
    other = submit(alice, agentId=rex.id)
    foreign = provision_sandbox(rex, other["id"])
    response = rex.api.post(f"/api/v1/tasks/{tid}/executing", {"sandboxId": foreign})
    assert response.status_code == 400
    error = error_of(response)
    assert (error["code"], error["param"]) == ("sandbox_not_live", "sandboxId")
    assert Task.objects.get(pk=tid).status == "submitted"


def test_it_refuses_to_start_in_a_destroyed_sandbox(submitted, rex):
    tid = submitted["id"]
    sid = provision_sandbox(rex, tid)
    rex.api.delete(f"/api/v1/tasks/{tid}/sandbox/{sid}")
    response = rex.api.post(f"/api/v1/tasks/{tid}/executing", {"sandboxId": sid})
    assert response.status_code == 400
    error = error_of(response)
    assert (error["code"], error["param"]) == ("sandbox_not_live", "sandboxId")
    assert Task.objects.get(pk=tid).status == "submitted"


def test_it_refuses_to_start_in_an_unknown_sandbox(submitted, rex):
    response = rex.api.post(
        f"/api/v1/tasks/{submitted['id']}/executing", {"sandboxId": "sbx_nosuchsandbox"}
    )
    assert response.status_code == 400
    assert error_of(response)["code"] == "sandbox_not_live"


def test_it_refuses_to_start_a_task_twice(executing, rex):
    response = rex.api.post(
        f"/api/v1/tasks/{executing['id']}/executing", {"sandboxId": executing["sandboxId"]}
    )
    assert response.status_code == 409
    assert error_of(response)["code"] == "task_executing"


@pytest.mark.parametrize("state", ["completed", "failed"])
def test_it_checks_the_state_before_the_sandbox_on_start(request, rex, state):
    task = request.getfixturevalue(state)
    response = rex.api.post(
        f"/api/v1/tasks/{task['id']}/executing", {"sandboxId": "sbx_nosuchsandbox"}
    )
    assert response.status_code == 409
    assert error_of(response)["code"] == f"task_{state}"


def test_it_caps_an_agents_executing_tasks_at_max_concurrent(alice, bob):
    solo = make_agent(bob, "solo", {"code_review": 1000}, max_concurrent=1)
    first = submit(alice, agentId=solo.id)
    second = submit(alice, agentId=solo.id)  # a direct hire is accepted and waits in submitted
    assert second["status"] == "submitted"
    start(solo, first["id"])
    sid = provision_sandbox(solo, second["id"])

    response = solo.api.post(f"/api/v1/tasks/{second['id']}/executing", {"sandboxId": sid})
    assert response.status_code == 409
    assert error_of(response)["code"] == "agent_at_capacity"
    assert Task.objects.get(pk=second["id"]).status == "submitted"
    assert Sandbox.objects.get(pk=sid).status == "live"

    assert hand_in_and_get(solo, first["id"])["status"] == "completed"
    response = solo.api.post(f"/api/v1/tasks/{second['id']}/executing", {"sandboxId": sid})
    assert response.status_code == 200
    assert response.json()["status"] == "executing"


def test_it_counts_only_executing_tasks_against_the_cap(alice, bob):
    pair = make_agent(bob, "pair", {"code_review": 1000}, max_concurrent=2)
    tasks = [submit(alice, agentId=pair.id) for _ in range(3)]
    start(pair, tasks[0]["id"])
    assert hand_in_and_get(pair, tasks[0]["id"])["status"] == "completed"
    start(pair, tasks[1]["id"])
    start(pair, tasks[2]["id"])  # one completed, two executing: at the cap, not beyond
    assert Task.objects.filter(agent=pair.agent, status="executing").count() == 2


@pytest.mark.postgres
def test_it_starts_one_of_two_concurrent_starts_at_the_cap(postgres, alice, bob):
    solo = make_agent(bob, "solo", {"code_review": 1000}, max_concurrent=1)
    tasks = [submit(alice, agentId=solo.id)["id"] for _ in range(2)]
    sandboxes = [provision_sandbox(solo, tid) for tid in tasks]
    results = run_together(
        [
            (lambda t=tid, s=sid: solo.api.post(f"/api/v1/tasks/{t}/executing", {"sandboxId": s}))
            for tid, sid in zip(tasks, sandboxes, strict=True)
        ]
    )
    assert sorted(r.status_code for r in results) == [200, 409]
    assert Task.objects.filter(agent=solo.agent, status="executing").count() == 1


# complete


def test_it_completes_and_moves_the_money(executing, rex, alice):
    tid = executing["id"]
    response = hand_in(rex, tid, qualityScore=90, executionTimeMs=4321)
    assert response.status_code == 200
    assert response.json()["status"] == "quality_check"
    task = get_task(alice, tid)
    assert task["status"] == "completed"
    assert task["output"] == GOOD_OUTPUT
    assert task["executionTimeMs"] == 4321
    assert task["selfReportedQualityScore"] == 90
    assert (task["creditsHeld"], task["creditsCharged"], task["creditsRefunded"]) == (0, 2500, 0)
    assert task["completedAt"] is not None

    assert (alice.balance().available, alice.balance().held) == (97_500, 0)
    assert (rex.balance().available, rex.balance().held) == (2250, 0)
    assert platform_fees() == 250
    assert entries(alice) == [
        ("charge", -2500),
        ("release", 5000),
        ("hold", -5000),
        ("grant", 100_000),
    ]
    assert entries(rex) == [("payout", 2250)]
    assert event_types(alice, tid)[-2:] == ["complete", "pass"]


def test_it_accepts_a_zero_execution_time_and_no_self_reported_score(executing, rex):
    response = hand_in(rex, executing["id"], executionTimeMs=0, qualityScore=None)
    assert response.status_code == 200
    assert response.json()["status"] == "quality_check"
    task = get_task(rex, executing["id"])
    assert task["status"] == "completed"
    assert (task["executionTimeMs"], task["selfReportedQualityScore"]) == (0, None)


@pytest.mark.parametrize(
    ("bps", "price", "fee"),
    [
        (1000, 2509, 250),  # 250.9 floors to 250
        (1234, 2501, 308),  # 308.6234 floors to 308
        (1, 9999, 0),  # 0.9999 floors to 0
        (0, 2501, 0),
        (10000, 2501, 2501),
    ],
)
def test_it_floors_the_platform_fee(settings, alice, bob, bps, price, fee):
    settings.PLATFORM_FEE_BPS = bps
    odd = make_agent(bob, "odd", {"code_review": price})
    tid = submit(alice, agentId=odd.id, maxBudget=10_000)["id"]
    start(odd, tid)
    assert hand_in_and_get(odd, tid)["creditsCharged"] == price

    assert (alice.balance().available, alice.balance().held) == (100_000 - price, 0)
    assert odd.balance().available == price - fee
    assert platform_fees() == fee


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        ({"executionTimeMs": 5}, "output_required", "output"),
        ({"output": None, "executionTimeMs": 5}, "output_required", "output"),
        ({"output": ["a finding"], "executionTimeMs": 5}, "output_invalid", "output"),
        ({"output": "a finding", "executionTimeMs": 5}, "output_invalid", "output"),
        ({"output": GOOD_OUTPUT}, "execution_time_ms_required", "executionTimeMs"),
        (
            {"output": GOOD_OUTPUT, "executionTimeMs": -1},
            "execution_time_ms_too_small",
            "executionTimeMs",
        ),
        (
            {"output": GOOD_OUTPUT, "executionTimeMs": "5"},
            "execution_time_ms_invalid",
            "executionTimeMs",
        ),
        (
            {"output": GOOD_OUTPUT, "executionTimeMs": 1.5},
            "execution_time_ms_invalid",
            "executionTimeMs",
        ),
        (
            {"output": GOOD_OUTPUT, "executionTimeMs": True},
            "execution_time_ms_invalid",
            "executionTimeMs",
        ),
        (
            {"output": GOOD_OUTPUT, "executionTimeMs": 5, "qualityScore": 101},
            "quality_score_too_large",
            "qualityScore",
        ),
        (
            {"output": GOOD_OUTPUT, "executionTimeMs": 5, "qualityScore": -1},
            "quality_score_too_small",
            "qualityScore",
        ),
        (
            {"output": GOOD_OUTPUT, "executionTimeMs": 5, "qualityScore": 80.5},
            "quality_score_invalid",
            "qualityScore",
        ),
        (
            {"output": GOOD_OUTPUT, "executionTimeMs": 5, "qualityScore": "80"},
            "quality_score_invalid",
            "qualityScore",
        ),
        (
            {"output": GOOD_OUTPUT, "executionTimeMs": 5, "cost": 10},
            "unknown_parameter",
            "cost",
        ),
    ],
)
def test_it_validates_the_complete_body(executing, rex, alice, body, code, param):
    tid = executing["id"]
    response = rex.api.post(f"/api/v1/tasks/{tid}/complete", body)
    assert response.status_code == 400
    error = error_of(response)
    assert (error["type"], error["code"], error["param"]) == ("validation_error", code, param)
    assert Task.objects.get(pk=tid).status == "executing"
    assert (alice.balance().available, alice.balance().held) == (95_000, 5000)


def test_it_validates_the_body_before_the_state(completed, rex):
    response = rex.api.post(
        f"/api/v1/tasks/{completed['id']}/complete", {"output": [], "executionTimeMs": 1}
    )
    assert response.status_code == 400
    assert error_of(response)["code"] == "output_invalid"


@pytest.mark.parametrize("state", ["submitted", "completed", "failed"])
def test_it_refuses_to_complete_a_task_that_is_not_executing(request, rex, alice, state):
    task = request.getfixturevalue(state)
    before = alice.balance()
    response = hand_in(rex, task["id"])
    assert response.status_code == 409
    error = error_of(response)
    assert (error["type"], error["code"]) == ("conflict", f"task_{state}")
    assert Task.objects.get(pk=task["id"]).status == state
    assert alice.balance() == before


# fail


def test_it_fails_a_submitted_task_and_releases_the_whole_hold(submitted, rex, alice):
    tid = submitted["id"]
    response = rex.api.post(
        f"/api/v1/tasks/{tid}/fail", {"reason": "execution_error", "errorMessage": "repo is gone"}
    )
    assert response.status_code == 200
    task = response.json()
    assert task["status"] == "failed"
    assert (task["failureReason"], task["errorMessage"]) == ("execution_error", "repo is gone")
    assert (task["creditsHeld"], task["creditsCharged"]) == (0, None)
    assert (alice.balance().available, alice.balance().held) == (100_000, 0)
    assert rex.balance().available == 0
    assert platform_fees() == 0
    assert entries(alice) == [("release", 5000), ("hold", -5000), ("grant", 100_000)]
    last = alice.api.get(f"/api/v1/tasks/{tid}/events").json()[-1]
    assert (last["type"], last["from"], last["to"], last["actor"]) == (
        "fail",
        "submitted",
        "failed",
        f"agent:{rex.id}",
    )
    assert last["data"] == {"reason": "execution_error", "errorMessage": "repo is gone"}


@pytest.mark.parametrize(
    "reason", ["quality_gate", "execution_error", "timeout", "budget_exceeded"]
)
def test_it_fails_an_executing_task_for_any_listed_reason(executing, rex, alice, reason):
    response = rex.api.post(f"/api/v1/tasks/{executing['id']}/fail", {"reason": reason})
    assert response.status_code == 200
    task = response.json()
    assert (task["status"], task["failureReason"], task["errorMessage"]) == (
        "failed",
        reason,
        None,
    )
    assert (alice.balance().available, alice.balance().held) == (100_000, 0)


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        ({"reason": "bored"}, "reason_invalid", "reason"),
        ({"reason": None}, "reason_required", "reason"),
        ({}, "reason_required", "reason"),
        ({"errorMessage": "no reason"}, "reason_required", "reason"),
        ({"reason": "timeout", "errorMessage": 5}, "error_message_invalid", "errorMessage"),
        ({"reason": "timeout", "retry": True}, "unknown_parameter", "retry"),
    ],
)
def test_it_validates_the_fail_body(executing, rex, alice, body, code, param):
    tid = executing["id"]
    response = rex.api.post(f"/api/v1/tasks/{tid}/fail", body)
    assert response.status_code == 400
    error = error_of(response)
    assert (error["code"], error["param"]) == (code, param)
    assert Task.objects.get(pk=tid).status == "executing"
    assert alice.balance().held == 5000


@pytest.mark.parametrize("state", ["completed", "failed"])
def test_it_refuses_to_fail_a_finished_task(request, rex, alice, state):
    task = request.getfixturevalue(state)
    before = alice.balance()
    response = rex.api.post(f"/api/v1/tasks/{task['id']}/fail", {"reason": "execution_error"})
    assert response.status_code == 409
    assert error_of(response)["code"] == f"task_{state}"
    assert Task.objects.get(pk=task["id"]).status == state
    assert alice.balance() == before


def test_it_leaves_a_task_in_quality_check_to_the_platform(executing, rex, alice, monkeypatch):
    # The quality worker has not run yet.
    monkeypatch.setattr(jobs.check_quality, "delay", lambda *args: None)
    tid = executing["id"]
    assert hand_in(rex, tid).json()["status"] == "quality_check"
    response = rex.api.post(f"/api/v1/tasks/{tid}/fail", {"reason": "execution_error"})
    assert response.status_code == 409
    assert error_of(response)["code"] == "task_quality_check"
    assert alice.balance().held == 5000


# A terminal status destroys the task's live sandboxes


def _assert_all_destroyed(settings, tid: str, *sids: str) -> None:
    rows = dict(Sandbox.objects.filter(task_id=tid).values_list("pk", "status"))
    assert rows == dict.fromkeys(sids, "destroyed")
    assert Sandbox.objects.filter(task_id=tid, destroyed_at=None).count() == 0
    for sid in sids:
        assert not sandbox_dir(settings, sid).exists()


def test_it_destroys_the_sandbox_when_the_task_completes(executing, rex, settings):
    tid = executing["id"]
    assert hand_in_and_get(rex, tid)["status"] == "completed"
    _assert_all_destroyed(settings, tid, executing["sandboxId"])


def test_it_destroys_the_sandbox_when_the_quality_check_rejects(executing, rex, settings):
    tid = executing["id"]
    assert hand_in_and_get(rex, tid, output={})["status"] == "failed"
    _assert_all_destroyed(settings, tid, executing["sandboxId"])


def test_it_destroys_the_sandbox_when_the_agent_fails_an_executing_task(executing, rex, settings):
    tid = executing["id"]
    fail(rex, tid)
    _assert_all_destroyed(settings, tid, executing["sandboxId"])


def test_it_destroys_the_live_sandbox_when_a_submitted_task_fails(submitted, rex, settings):
    tid = submitted["id"]
    old = provision_sandbox(rex, tid)
    rex.api.delete(f"/api/v1/tasks/{tid}/sandbox/{old}")
    live = provision_sandbox(rex, tid)
    assert sandbox_dir(settings, live).is_dir()
    fail(rex, tid)
    _assert_all_destroyed(settings, tid, old, live)
