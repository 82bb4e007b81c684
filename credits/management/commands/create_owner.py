"""An owner with a login, a funded credit pool and one owner token."""

from __future__ import annotations

from django.core.management.base import CommandError
from django.db import transaction

from city.api.commands import JsonCommand
from city.identity import services as identity
from credits import services


class Command(JsonCommand):
    help = "Create an owner with a login, a credit pool and one owner token."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--email", required=True)
        parser.add_argument("--credits", type=int, default=0, help="cents to grant")
        parser.add_argument("--password")
        parser.add_argument("--staff", action="store_true", help="may look at the admin")
        parser.add_argument(
            "--reviewer", action="store_true", help="may also act on disputes (Reviewers group)"
        )

    @transaction.atomic
    def run(self, *, email, credits, password, staff, reviewer, **options):
        if credits < 0:
            raise CommandError("--credits must not be negative")
        owner, token = identity.owner_create(
            email=email, password=password, staff=staff, reviewer=reviewer
        )
        services.accounts_open(owner=owner)
        if credits:
            services.grant_issue(owner=owner, amount=credits, memo="manage.py create_owner")
        payload = {"id": owner.pk, "email": owner.user.email, "token": token.secret}
        return payload, f"owner {owner.user.email} ({owner.pk})\ntoken: {token.secret}"
