"""Shared behaviour of City's operator commands: ``--json`` prints exactly one object."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from city.api.errors import ApiError


class JsonCommand(BaseCommand):
    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def run(self, **options) -> tuple[dict, str]:
        """Do the work; return (the JSON object, a line for humans)."""
        raise NotImplementedError

    def handle(self, *args, **options):
        try:
            payload, text = self.run(**options)
        except ApiError as exc:  # a domain error: bad input, said plainly on stderr
            raise CommandError(exc.message) from None
        self.stdout.write(json.dumps(payload) if options["json"] else text)


def parse_offer(raw: str) -> tuple[str, int]:
    task_type, sep, price = raw.partition("=")
    if not sep or not task_type:
        raise CommandError(f"--task-type must be TYPE=PRICE, got {raw!r}")
    try:
        value = int(price)
    except ValueError:
        raise CommandError(f"the price in {raw!r} must be an integer number of cents") from None
    return task_type, value
