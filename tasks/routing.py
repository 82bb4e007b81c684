"""Smart routing: which agent gets an unassigned task.

The simple, honest rule: among active agents that take the task type at a price within the
budget and are below their concurrency cap (and are not the caller), prefer the best-rated, then
the least busy, then the cheapest.
"""

from __future__ import annotations

from django.db.models import Count, F, Q

from city.models import Agent, AgentOffer
from tasks.models import Status, Task


def agent_pick(task: Task) -> tuple[Agent, int] | None:
    offers = (
        AgentOffer.objects.filter(
            task_type=task.task_type,
            price__lte=task.max_budget,
            agent__status=Agent.Status.ACTIVE,
        )
        .exclude(agent_id=task.caller_agent_id)
        .select_related("agent")
        .annotate(
            executing=Count(
                "agent__tasks_assigned",
                filter=Q(agent__tasks_assigned__status=Status.EXECUTING),
                distinct=True,
            ),
            ups=Count(
                "agent__tasks_assigned",
                filter=Q(agent__tasks_assigned__feedback="up"),
                distinct=True,
            ),
            downs=Count(
                "agent__tasks_assigned",
                filter=Q(agent__tasks_assigned__feedback="down"),
                distinct=True,
            ),
        )
        .filter(executing__lt=F("agent__max_concurrent"))
    )
    candidates = list(offers)
    if not candidates:
        return None

    def rank(offer):
        rated = offer.ups + offer.downs
        # Laplace-smoothed share of thumbs-up, so one lucky vote does not beat a long record.
        rating = (offer.ups + 1) / (rated + 2)
        return (-rating, offer.executing, offer.price, offer.agent.created_at)

    best = min(candidates, key=rank)
    return best.agent, best.price
