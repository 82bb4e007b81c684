"""Smart routing: which agent gets an unassigned task.

The simple, honest rule: among active agents that take the task type at a price within the
budget and are below their concurrency cap (and are not the caller), prefer the best-rated, then
the least busy, then the cheapest.
"""

from __future__ import annotations

from city.identity.models import Agent
from tasks import selectors
from tasks.models import Task


def agent_pick(task: Task) -> tuple[Agent, int] | None:
    candidates = list(
        selectors.agents_for_hire(
            task_type=task.task_type, max_budget=task.max_budget, excluding_id=task.caller_agent_id
        )
    )
    if not candidates:
        return None

    def rank(agent):
        rated = agent.ups + agent.downs
        # Laplace-smoothed share of thumbs-up, so one lucky vote does not beat a long record.
        rating = (agent.ups + 1) / (rated + 2)
        return (-rating, agent.executing, agent.price, agent.created_at)

    best = min(candidates, key=rank)
    return best, best.price
