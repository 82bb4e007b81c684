"""Audit every money invariant; exit 1 listing each discrepancy."""

from __future__ import annotations

import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils.module_loading import import_string

from credits.models import Account, Entry, Transaction


class Command(BaseCommand):
    help = "Audit the ledger: balanced transactions, cached balances, and each task's money."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args, **options):
        # LEDGER_AUDITS names each audit, the ledger's own and those of apps that hold money
        # through it (a task's money against its status), which this app does not import.
        problems: list[str] = []
        for path in settings.LEDGER_AUDITS:
            problems.extend(import_string(path)())
        counts = {
            "transactions": Transaction.objects.count(),
            "entries": Entry.objects.count(),
            "accounts": Account.objects.count(),
        }
        if options["json"]:
            report = {"ok": not problems, **counts, "discrepancies": problems}
            self.stdout.write(json.dumps(report))
        else:
            for problem in problems:
                self.stderr.write(problem)
        if problems:
            raise CommandError(f"ledger check failed: {len(problems)} discrepancies")
        if not options["json"]:
            self.stdout.write(
                f"ledger ok: {counts['transactions']} transactions, {counts['entries']} entries, "
                f"{counts['accounts']} accounts balanced"
            )
