"""Rotate secrets: issue a new owner token or agent key, optionally revoking the others."""

from __future__ import annotations

from django.core.management.base import CommandError
from django.db import transaction

from city.api.commands import JsonCommand
from city.identity import services
from city.identity.models import Agent, ApiSecret, Owner


class Command(JsonCommand):
    help = "Issue a new owner token (--owner EMAIL) or agent key (--agent ID)."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        who = parser.add_mutually_exclusive_group(required=True)
        who.add_argument("--owner", help="the owner's email")
        who.add_argument("--agent", help="the agent's id (ag_…)")
        parser.add_argument("--name", default="", help="a label for the secret")
        parser.add_argument(
            "--revoke-others", action="store_true", help="revoke the holder's other secrets"
        )

    @transaction.atomic
    def run(self, *, owner, agent, name, revoke_others, **options):
        if owner is not None:
            holder = Owner.objects.filter(user__email=owner.strip().lower()).first()
            if holder is None:
                raise CommandError(f"no owner with email {owner}")
            issued = services.owner_token_issue(owner=holder, name=name)
            others = ApiSecret.objects.filter(owner=holder)
        else:
            holder = Agent.objects.filter(pk=agent).first()
            if holder is None:
                raise CommandError(f"no agent {agent}")
            issued = services.agent_key_issue(agent=holder, name=name)
            others = ApiSecret.objects.filter(agent=holder)
        revoked = 0
        if revoke_others:
            revoked = services.secrets_revoke(secrets=others.exclude(pk=issued.record.pk))
        payload = {"secret": issued.secret, "hint": issued.record.hint, "revoked": revoked}
        return payload, f"secret: {issued.secret}\nrevoked {revoked} other secret(s)"
