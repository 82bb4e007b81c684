"""Demo data for ``make run``: an owner with credits, a few agents, a staff reviewer.

Secrets are stored only as hashes, so each run revokes the demo principals' old secrets, issues
fresh ones, prints them and writes them to ``.demo.env`` for ``source``.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction
from django.db.models import Q

from city.identity import services
from city.identity.models import Agent, ApiSecret, Owner
from credits import selectors
from credits import services as credits

DEMO_OWNER = "demo@city.local"
DEMO_OPERATOR = "operator@city.local"
REVIEWER = "reviewer@city.local"
DEMO_CREDITS = 100_000
AGENTS = [
    ("Rex the Reviewer", {"code_review": 2500, "security_review": 4000}),
    ("Fay the Fixer", {"bug_fix": 4000, "code_review": 3000}),
    ("Tess the Tester", {"test_writing": 2000}),
]


class Command(BaseCommand):
    help = "Create demo accounts and print how to log in and their secrets."

    def add_arguments(self, parser):
        parser.add_argument("--env-file", default=str(settings.BASE_DIR / ".demo.env"))

    @transaction.atomic
    def handle(self, *args, env_file, **options):
        owner = self._owner(DEMO_OWNER, password="demo", amount=DEMO_CREDITS)
        operator = self._owner(DEMO_OPERATOR, password="operator", amount=0)
        self._owner(REVIEWER, password="review", amount=0, reviewer=True)
        agents = []
        for name, offers in AGENTS:
            agent = Agent.objects.filter(operator=operator, name=name).first()
            if agent is None:
                agent, _ = services.agent_create(operator=operator, name=name, offers=offers)
            agents.append(agent)

        services.secrets_revoke(
            secrets=ApiSecret.objects.filter(Q(owner=owner) | Q(agent__in=agents))
        )
        token = services.owner_token_issue(owner=owner, name="demo").secret
        keys = [services.agent_key_issue(agent=a, name="demo").secret for a in agents]
        available = selectors.balance_get(owner=owner).available
        if available < DEMO_CREDITS // 2:
            credits.grant_issue(owner=owner, amount=DEMO_CREDITS - available, memo="demo top-up")

        env = {
            "OWNER_TOKEN": token,
            "AGENT_KEY": keys[0],
            "AGENT_ID": agents[0].pk,
            "TASK_TYPE": "code_review",
            "PRICE": str(AGENTS[0][1]["code_review"]),
            # make run's demo agent (Procfile.dev) works as Fay: Rex stays free for the README's
            # walkthrough and contract-smoke.py, which act as the agent themselves.
            "DEMO_AGENT_KEY": keys[1],
            "DEMO_AGENT_ID": agents[1].pk,
        }
        Path(env_file).write_text("".join(f"export {k}={v}\n" for k, v in env.items()))
        self.stdout.write(
            f"Demo owner   {DEMO_OWNER} / demo   token {token}\n"
            f"Reviewer     {REVIEWER} / review (the dispute queue: /admin/disputes/dispute/)\n"
        )
        for agent, key in zip(agents, keys, strict=True):
            offers = ", ".join(f"{o.task_type}={o.price}" for o in agent.offers.all())
            worked = "  (the demo agent under make run)" if agent == agents[1] else ""
            self.stdout.write(
                f"Agent        {agent.name} {agent.pk} [{offers}]  key {key}{worked}\n"
            )
        self.stdout.write(f"Secrets written to {env_file}: `source {env_file}`\n")

    def _owner(self, email: str, *, password: str, amount: int, reviewer: bool = False) -> Owner:
        owner = Owner.objects.filter(user__email=email).first()
        if owner is None:
            owner, _ = services.owner_create(email=email, password=password, reviewer=reviewer)
            credits.accounts_open(owner=owner)
            if amount:
                credits.grant_issue(owner=owner, amount=amount, memo="demo")
        return owner
