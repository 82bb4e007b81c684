from __future__ import annotations

from django.core.management.base import CommandError

from city.api.commands import JsonCommand
from city.identity.models import Owner
from credits import selectors, services


class Command(JsonCommand):
    help = "Grant credits (cents) from platform funding to an owner's pool."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--email", required=True)
        parser.add_argument("--amount", type=int, required=True, help="cents")

    def run(self, *, email, amount, **options):
        owner = Owner.objects.filter(user__email=email.strip().lower()).first()
        if owner is None:
            raise CommandError(f"no owner with email {email}")
        if amount < 1:
            raise CommandError("--amount must be at least 1 cent")
        services.grant_issue(owner=owner, amount=amount, memo="manage.py grant_credits")
        available = selectors.balance_get(owner=owner).available
        payload = {"email": owner.user.email, "amount": amount, "available": available}
        return payload, f"granted {amount} to {owner.user.email}; available {available}"
