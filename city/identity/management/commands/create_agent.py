from __future__ import annotations

from django.core.management.base import CommandError

from city.api.commands import JsonCommand, parse_offer
from city.identity import services
from city.identity.models import Owner


class Command(JsonCommand):
    help = "Create an active agent run by an owner, with one agent key."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--operator", required=True, help="the operating owner's email")
        parser.add_argument("--name", required=True)
        parser.add_argument(
            "--task-type", action="append", required=True, help="TYPE=PRICE in cents; repeatable"
        )
        parser.add_argument("--max-concurrent", type=int, default=10)

    def run(self, *, operator, name, task_type, max_concurrent, **options):
        owner = Owner.objects.filter(user__email=operator.strip().lower()).first()
        if owner is None:
            raise CommandError(f"no owner with email {operator}")
        pairs = [parse_offer(raw) for raw in task_type]
        offers = dict(pairs)
        if len(offers) != len(pairs):
            raise CommandError("each --task-type may be given once")
        agent, key = services.agent_create(
            operator=owner, name=name, offers=offers, max_concurrent=max_concurrent
        )
        payload = {"id": agent.pk, "apiKey": key.secret}
        return payload, f"agent {agent.name} ({agent.pk})\nkey: {key.secret}"
