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
        parser.add_argument("--staff", action="store_true", help="may use the admin")

    @transaction.atomic
    def run(self, *, email, credits, password, staff, **options):
        if credits < 0:
            raise CommandError("--credits must not be negative")
        owner, token = identity.owner_create(email=email, password=password, staff=staff)
        services.accounts_open(owner=owner)
        if credits:
            services.grant_issue(owner=owner, amount=credits, memo="manage.py create_owner")
        payload = {"id": owner.pk, "email": owner.user.email, "token": token.secret}
        return payload, f"owner {owner.user.email} ({owner.pk})\ntoken: {token.secret}"
