"""identity.services.agent_update: an operator's edit of its agent's offers and limit."""

from __future__ import annotations

import pytest

from city.identity import services as identity
from city.identity.models import AgentOffer
from tasks.models import Task
from tests.actions import submit


def offers_of(bot) -> dict[str, int]:
    return dict(AgentOffer.objects.filter(agent=bot.agent).values_list("task_type", "price"))


def test_it_replaces_the_offers_and_sets_the_limit(rex):
    identity.agent_update(
        agent=rex.agent, offers={"code_review": 3000, "translation": 900}, max_concurrent=3
    )

    rex.agent.refresh_from_db()
    assert offers_of(rex) == {"code_review": 3000, "translation": 900}  # bug_fix is gone
    assert rex.agent.max_concurrent == 3


def test_it_keeps_the_rows_of_offers_that_stay(rex):
    before = dict(AgentOffer.objects.filter(agent=rex.agent).values_list("task_type", "pk"))

    identity.agent_update(
        agent=rex.agent, offers={"code_review": 2500, "bug_fix": 4500}, max_concurrent=10
    )

    after = dict(AgentOffer.objects.filter(agent=rex.agent).values_list("task_type", "pk"))
    assert after == before
    assert offers_of(rex) == {"code_review": 2500, "bug_fix": 4500}


def test_an_assigned_task_keeps_the_price_it_was_hired_at(alice, rex):
    task = submit(alice, agentId=rex.id)

    identity.agent_update(agent=rex.agent, offers={"code_review": 4900}, max_concurrent=10)

    assert Task.objects.get(pk=task["id"]).price == 2500


@pytest.mark.parametrize(
    ("offers", "max_concurrent", "message"),
    [
        ({}, 10, "at least one task type"),
        ({"Code Review": 100}, 10, "task type must match"),
        ({"code_review": 0}, 10, "at least 1 cent"),
        ({"code_review": 100}, 0, "at least 1"),
    ],
)
def test_it_refuses_what_agent_create_refuses_and_changes_nothing(
    rex, offers, max_concurrent, message
):
    with pytest.raises(identity.IdentityError, match=message):
        identity.agent_update(agent=rex.agent, offers=offers, max_concurrent=max_concurrent)

    rex.agent.refresh_from_db()
    assert offers_of(rex) == {"code_review": 2500, "bug_fix": 4000}
    assert rex.agent.max_concurrent == 10


def test_it_checks_every_offer_before_changing_any(rex):
    with pytest.raises(identity.IdentityError):
        identity.agent_update(
            agent=rex.agent, offers={"code_review": 100, "bug_fix": -5}, max_concurrent=10
        )

    assert offers_of(rex) == {"code_review": 2500, "bug_fix": 4000}
