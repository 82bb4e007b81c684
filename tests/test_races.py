"""Concurrent requests with real threads on PostgreSQL: each race has exactly one outcome.

SQLite ignores row locks, so every test here requests ``postgres`` (skipped without it, failed in
CI). Threads wait at a barrier so their requests start together; each uses its own client and
database connection, and closes that connection when done so that the pool gets it back.
"""

from __future__ import annotations

from collections import Counter

from credits import services as credits
from credits.models import Entry, Transaction
from tasks.models import Sandbox, Status, Task
from tests.actions import provision_sandbox, run_to_completion, start, submit
from tests.concurrency import run_together
from tests.factories import GOOD_OUTPUT, ApiClient, error_of, make_agent, make_owner, task_body

ROUNDS = 3
BUDGET = 5000


def post(secret: str, path: str, body: dict | None = None, headers: dict | None = None):
    """A request to make in a thread, with a client of its own."""
    return lambda: ApiClient(secret).post(path, body, headers=headers)


def outcomes(responses) -> Counter:
    return Counter(
        (r.status_code, r.json()["error"]["code"] if r.status_code >= 400 else None)
        for r in responses
    )


def test_it_holds_only_what_the_pool_funds_under_20_concurrent_submits(postgres, rex):
    for round_ in range(ROUNDS):
        owner = make_owner(f"spender{round_}@example.com", credits=5 * BUDGET)
        body = task_body(agentId=rex.id, maxBudget=BUDGET)

        responses = run_together([post(owner.token, "/api/v1/tasks", body) for _ in range(20)])

        assert outcomes(responses) == {(201, None): 5, (402, "insufficient_credits"): 15}
        for response in responses:
            if response.status_code == 402:
                assert error_of(response)["type"] == "payment_required"
        balance = owner.balance()
        assert (balance.available, balance.held) == (0, 5 * BUDGET)
        created = {r.json()["id"] for r in responses if r.status_code == 201}
        tasks = Task.objects.filter(caller_owner=owner.owner)
        assert set(tasks.values_list("id", flat=True)) == created
        assert all(t.credits_held == BUDGET and t.hold.amount == BUDGET for t in tasks)
        # The pool never dipped below zero on the way: every hold saw the one before it.
        afters = Entry.objects.filter(account__owner=owner.owner, account__kind="pool")
        assert sorted(afters.values_list("balance_after", flat=True)) == [
            0,
            BUDGET,
            2 * BUDGET,
            3 * BUDGET,
            4 * BUDGET,
            5 * BUDGET,
        ]


def test_it_refunds_once_for_two_concurrent_thumbs_down(postgres, alice, rex):
    for round_ in range(ROUNDS):
        tid = submit(alice, agentId=rex.id)["id"]
        run_to_completion(rex, tid)
        assert alice.balance().available == 100_000 - 2500

        path = f"/api/v1/tasks/{tid}/feedback"
        responses = run_together([post(alice.token, path, {"feedback": "down"}) for _ in range(2)])

        assert sorted(r.status_code for r in responses) == [200, 409]
        won = next(r for r in responses if r.status_code == 200)
        lost = next(r for r in responses if r.status_code == 409)
        assert won.json() == {"refunded": True}
        assert error_of(lost)["code"] == "feedback_already_given"
        assert Transaction.objects.filter(subject=tid, kind=Transaction.Kind.REFUND).count() == 1
        refunds = Entry.objects.filter(subject=tid, kind=Entry.Kind.REFUND)
        assert list(refunds.values_list("amount", flat=True)) == [2500]
        assert alice.balance().available == 100_000
        task = Task.objects.get(pk=tid)
        assert (task.status, task.credits_refunded, task.feedback) == (
            Status.REFUNDED,
            2500,
            "down",
        )
        assert rex.balance().available == 0
        types = [e["type"] for e in alice.api.get(f"/api/v1/tasks/{tid}/events").json()]
        assert (types.count("feedback"), types.count("refund")) == (1, 1), round_


def test_it_lets_exactly_one_of_complete_and_fail_win(postgres, alice, rex):
    winners = Counter()
    for _ in range(ROUNDS * 2):
        tid = submit(alice, agentId=rex.id)["id"]
        start(rex, tid)
        before = alice.balance().available + alice.balance().held
        earned = rex.balance().available

        responses = run_together(
            [
                post(
                    rex.key,
                    f"/api/v1/tasks/{tid}/complete",
                    {"output": GOOD_OUTPUT, "executionTimeMs": 5},
                ),
                post(rex.key, f"/api/v1/tasks/{tid}/fail", {"reason": "execution_error"}),
            ]
        )
        completed, failed = responses

        assert sorted(r.status_code for r in responses) == [200, 409]
        task = Task.objects.get(pk=tid)
        if completed.status_code == 200:
            winners["complete"] += 1
            assert completed.json()["status"] == "quality_check"
            assert error_of(failed)["code"] in ("task_quality_check", "task_completed")
            assert task.status == Status.COMPLETED
            assert (task.credits_charged, task.credits_held) == (2500, 0)
            assert alice.balance().available + alice.balance().held == before - 2500
            assert rex.balance().available == earned + 2250
        else:
            winners["fail"] += 1
            assert failed.json()["status"] == "failed"
            assert error_of(completed)["code"] == "task_failed"
            assert task.status == Status.FAILED
            assert task.failure_reason == "execution_error"
            assert alice.balance().available + alice.balance().held == before
            assert rex.balance().available == earned
        assert alice.balance().held == 0
        assert task.hold.status == ("captured" if task.status == Status.COMPLETED else "released")
        settled = Transaction.objects.filter(subject=tid).exclude(kind=Transaction.Kind.HOLD)
        assert settled.count() == 1
    assert sum(winners.values()) == ROUNDS * 2


def test_it_submits_once_for_the_same_idempotency_key_sent_twice_at_once(postgres, alice, rex):
    body = task_body(agentId=rex.id, maxBudget=BUDGET)
    for round_ in range(ROUNDS):
        headers = {"Idempotency-Key": f"race-{round_}"}

        responses = run_together([post(alice.token, "/api/v1/tasks", body, headers)] * 2)

        statuses = sorted(r.status_code for r in responses)
        assert statuses in ([201, 201], [201, 409]), [r.content for r in responses]
        created = [r for r in responses if r.status_code == 201]
        if statuses == [201, 201]:
            assert created[0].json()["id"] == created[1].json()["id"]
            assert created[0].content == created[1].content
        else:
            lost = next(r for r in responses if r.status_code == 409)
            assert error_of(lost)["code"] == "idempotency_key_in_use"
        tasks = Task.objects.filter(caller_owner=alice.owner)
        assert tasks.count() == round_ + 1
        assert tasks.filter(pk=created[0].json()["id"]).exists()
        balance = alice.balance()
        assert (balance.available, balance.held) == (
            100_000 - (round_ + 1) * BUDGET,
            (round_ + 1) * BUDGET,
        )


def test_it_starts_no_more_tasks_than_the_agents_max_concurrent(postgres, alice, bob):
    for round_ in range(ROUNDS):
        capped = make_agent(bob, f"capped{round_}", {"code_review": 1000}, max_concurrent=3)
        starts = []
        for _ in range(10):
            tid = submit(alice, agentId=capped.id, maxBudget=1000)["id"]
            sandbox = provision_sandbox(capped, tid)
            starts.append(
                post(capped.key, f"/api/v1/tasks/{tid}/executing", {"sandboxId": sandbox})
            )

        responses = run_together(starts)

        assert outcomes(responses) == {(200, None): 3, (409, "agent_at_capacity"): 7}
        executing = Task.objects.filter(agent=capped.agent, status=Status.EXECUTING)
        assert executing.count() == 3
        assert Task.objects.filter(agent=capped.agent, status=Status.SUBMITTED).count() == 7
        assert {r.json()["id"] for r in responses if r.status_code == 200} == set(
            executing.values_list("id", flat=True)
        )


def test_it_provisions_one_live_sandbox_for_five_concurrent_requests(postgres, alice, rex):
    for _ in range(ROUNDS):
        tid = submit(alice, agentId=rex.id)["id"]

        responses = run_together([post(rex.key, f"/api/v1/tasks/{tid}/sandbox") for _ in range(5)])

        assert outcomes(responses) == {(201, None): 1, (409, "sandbox_already_live"): 4}
        live = Sandbox.objects.filter(task_id=tid, status=Sandbox.Status.LIVE)
        won = next(r for r in responses if r.status_code == 201)
        assert list(live.values_list("id", flat=True)) == [won.json()["sandboxId"]]
        types = [e["type"] for e in alice.api.get(f"/api/v1/tasks/{tid}/events").json()]
        assert types.count("sandbox_provision") == 1


def test_it_holds_only_what_an_agents_earnings_fund_under_concurrent_sub_hires(
    postgres, alice, rex, zed
):
    for _ in range(ROUNDS):
        credits.grant_issue(agent=rex.agent, amount=2 * 3000)
        parent = submit(alice, agentId=rex.id)["id"]
        start(rex, parent)
        body = task_body(agentId=zed.id, maxBudget=3000, parentTaskId=parent)

        responses = run_together([post(rex.key, "/api/v1/agent/tasks", body) for _ in range(5)])

        assert outcomes(responses) == {(201, None): 2, (402, "insufficient_credits"): 3}
        balance = rex.balance()
        assert balance.available == 0
        assert Task.objects.filter(caller_agent=rex.agent, parent_id=parent).count() == 2
    assert rex.balance().held == ROUNDS * 2 * 3000


def test_it_answers_201_to_20_owners_submitting_at_once(postgres, rex):
    body = task_body(agentId=rex.id, maxBudget=BUDGET)
    for round_ in range(ROUNDS):
        owners = [make_owner(f"crowd{round_}-{i}@example.com", credits=BUDGET) for i in range(20)]

        responses = run_together([post(owner.token, "/api/v1/tasks", body) for owner in owners])

        assert outcomes(responses) == {(201, None): 20}
        for owner in owners:
            balance = owner.balance()
            assert (balance.available, balance.held) == (0, BUDGET)
