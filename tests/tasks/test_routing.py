"""Smart routing decides: who is eligible, how they rank, and what happens when nobody is."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from credits.services import grant_issue
from tasks import routing
from tasks.models import Task
from tests.actions import assert_error, get_task, start, sub_hire, sub_hire_response, submit
from tests.factories import make_agent


def agent(**record) -> SimpleNamespace:
    """An agent's record as routing reads it, with a clean slate by default."""
    base = {
        "ups": 0,
        "downs": 0,
        "completed": 0,
        "rejected": 0,
        "refunded": 0,
        "executing": 0,
        "max_concurrent": 10,
    }
    return SimpleNamespace(**{**base, **record})


def score(max_budget: int = 1000, price: int = 500, **record) -> float:
    return routing.score(agent(**record), price=price, max_budget=max_budget)


# The score


def test_it_scores_an_unknown_free_agent_at_half_the_budget_as_documented():
    # 35 × ½ + 25 × ½ + 20 × 1 + 10 × ½ + 10 × 1
    assert score() == 65.0


@pytest.mark.parametrize(
    ("better", "worse"),
    [
        pytest.param({"ups": 9, "downs": 1}, {"ups": 1, "downs": 9}, id="thumbs"),
        pytest.param({"completed": 10}, {"completed": 5, "rejected": 5}, id="pass-rate"),
        pytest.param({"completed": 10}, {"completed": 10, "refunded": 5}, id="refunds"),
        pytest.param({"price": 200}, {"price": 800}, id="price"),
        pytest.param({"executing": 0}, {"executing": 9}, id="load"),
    ],
)
def test_it_ranks_a_better_record_price_or_load_higher(better, worse):
    assert score(**better) > score(**worse)


def test_it_lets_a_long_good_record_beat_one_lucky_vote():
    assert score(ups=40, downs=2) > score(ups=1)


def test_it_backs_off_between_routing_attempts():
    assert [routing.retry_delay(n) for n in range(1, 7)] == [15, 30, 60, 120, 120, 120]


# Eligibility and the decision, over the API


@pytest.fixture
def researchers(bob):
    """Three agents that take research at 100: a, b and c."""
    return [make_agent(bob, name, {"research": 100}) for name in ("a", "b", "c")]


def chain(alice, a, b) -> dict:
    """alice hires a (executing); a sub-hires b under it (executing): the task b executes."""
    first = submit(alice, taskType="research", agentId=a.id, maxBudget=500)["id"]
    start(a, first)
    grant_issue(agent=a.agent, amount=1000)
    second = sub_hire(a, taskType="research", agentId=b.id, maxBudget=300, parentTaskId=first)
    start(b, second["id"])
    grant_issue(agent=b.agent, amount=1000)
    return second


def test_it_never_routes_a_sub_hire_back_into_its_chain(alice, researchers):
    a, b, c = researchers
    parent = chain(alice, a, b)

    third = sub_hire(b, taskType="research", maxBudget=200, parentTaskId=parent["id"])

    assert get_task(b, third["id"])["agentId"] == c.id  # not b (the caller), not a (its hirer)


def test_it_leaves_a_three_deep_loop_unrouted_when_only_the_chain_could_take_it(alice, researchers):
    a, b, c = researchers
    parent = chain(alice, a, b)
    c.agent.status = "suspended"
    c.agent.save()

    third = sub_hire(b, taskType="research", maxBudget=200, parentTaskId=parent["id"])

    task = get_task(b, third["id"])
    assert (task["status"], task["agentId"]) == ("routing", None)


def test_it_refuses_a_direct_hire_that_would_close_a_loop(alice, researchers):
    a, b, _ = researchers
    parent = chain(alice, a, b)
    before = b.balance()

    response = sub_hire_response(
        b, taskType="research", agentId=a.id, maxBudget=200, parentTaskId=parent["id"]
    )

    assert_error(response, 400, "hiring_loop", "agentId")
    assert b.balance() == before


def test_it_never_routes_a_sub_hire_to_its_caller(rex, zed):
    grant_issue(agent=rex.agent, amount=5000)

    task = sub_hire(rex, maxBudget=5000)

    assert get_task(rex, task["id"])["agentId"] == zed.id


def test_it_breaks_a_tie_by_price_then_age(alice, bob):
    older = make_agent(bob, "older", {"research": 100})
    make_agent(bob, "younger", {"research": 100})

    task = submit(alice, taskType="research", maxBudget=100)

    assert get_task(alice, task["id"])["agentId"] == older.id


def test_it_records_why_the_agent_was_chosen(alice, bob):
    cheap = make_agent(bob, "cheap", {"research": 100})
    dear = make_agent(bob, "dear", {"research": 400})

    tid = submit(alice, taskType="research", maxBudget=500)["id"]

    assign = Task.objects.get(pk=tid).events.get(type="assign")
    assert assign.data["agentId"] == cheap.id
    assert assign.data["runnerUp"]["agentId"] == dear.id
    assert assign.data["score"] > assign.data["runnerUp"]["score"]
    assert assign.data["score"] == routing.score(
        SimpleNamespace(
            ups=0, downs=0, completed=0, rejected=0, refunded=0, executing=0, max_concurrent=10
        ),
        price=100,
        max_budget=500,
    )


def test_it_fails_budget_exceeded_at_once_and_refunds_to_the_cent(alice, bob):
    make_agent(bob, "dear", {"research": 900})
    make_agent(bob, "dearer", {"research": 1200})

    tid = submit(alice, taskType="research", maxBudget=899)["id"]

    task = get_task(alice, tid)
    assert (task["status"], task["failureReason"], task["creditsHeld"]) == (
        "failed",
        "budget_exceeded",
        0,
    )
    assert "900" in task["errorMessage"]
    assert (alice.balance().available, alice.balance().held) == (100_000, 0)
