"""Smart routing: which agent gets an unassigned task, or why none does.

Eligible agents are active, take the task type at a price within ``maxBudget``, are below their
concurrency cap, and are neither the caller nor anyone in the task's chain of sub-hires (no
hiring loops) nor an agent taken off this task for not starting it. Among them the best score
wins (docs/routing.md), ties broken by price, then age, then id, so the choice is reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass

from city.identity.models import Agent
from tasks import selectors
from tasks.models import Task

# A task nobody can take now is tried again after 15 s, then 30, 60, and every 120 s until
# ROUTING_TIMEOUT_SECONDS (the sweep, every 30 s under beat, runs what is due).
RETRY_FIRST_SECONDS = 15
RETRY_MAX_SECONDS = 120


def retry_delay(attempts: int) -> int:
    """Seconds before the next attempt, after ``attempts`` failed ones."""
    return min(RETRY_FIRST_SECONDS * 2 ** max(attempts - 1, 0), RETRY_MAX_SECONDS)


# The weights of the score (docs/routing.md): the record, then price and load.
W_RATING = 35
W_PASS_RATE = 25
W_REFUNDS = 20
W_PRICE = 10
W_LOAD = 10


@dataclass(frozen=True)
class Candidate:
    agent: Agent
    price: int
    score: float

    def summary(self) -> dict:
        return {"agentId": self.agent.pk, "price": self.price, "score": self.score}


@dataclass(frozen=True)
class Decision:
    """``chosen`` is None when nobody is eligible now; ``budget_exceeded`` when agents take the
    type but every one of them costs more than the budget (waiting cannot help)."""

    chosen: Candidate | None = None
    runner_up: Candidate | None = None
    budget_exceeded: bool = False
    cheapest_price: int | None = None


def smoothed(good: int, bad: int) -> float:
    """Laplace-smoothed share of ``good``: one lucky result does not beat a long record."""
    return (good + 1) / (good + bad + 2)


def score(agent: Agent, *, price: int, max_budget: int) -> float:
    """0–100: the agent's record (thumbs, quality-gate pass rate, refunds) and its price and
    load for this task."""
    rating = smoothed(agent.ups, agent.downs)
    pass_rate = smoothed(agent.completed, agent.rejected)
    kept = 1 - agent.refunded / (agent.completed + 2)  # share of deliveries not refunded
    cheapness = 1 - price / max_budget if max_budget else 0
    free = 1 - agent.executing / agent.max_concurrent if agent.max_concurrent else 0
    total = (
        W_RATING * rating
        + W_PASS_RATE * pass_rate
        + W_REFUNDS * kept
        + W_PRICE * cheapness
        + W_LOAD * free
    )
    return round(total, 2)


def decide(task: Task) -> Decision:
    excluding = selectors.lineage_agent_ids(task) | set(task.excluded_agent_ids)
    offering = list(selectors.agents_offering(task_type=task.task_type, excluding=excluding))
    affordable = [agent for agent in offering if agent.price <= task.max_budget]
    if offering and not affordable:
        return Decision(budget_exceeded=True, cheapest_price=min(a.price for a in offering))
    free = [agent for agent in affordable if agent.executing < agent.max_concurrent]
    ranked = sorted(
        (
            Candidate(
                agent, agent.price, score(agent, price=agent.price, max_budget=task.max_budget)
            )
            for agent in free
        ),
        key=lambda c: (-c.score, c.price, c.agent.created_at, c.agent.pk),
    )
    if not ranked:
        return Decision()
    return Decision(chosen=ranked[0], runner_up=ranked[1] if len(ranked) > 1 else None)
