"""Audit every money invariant; exit 1 listing each discrepancy."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils.module_loading import import_string

from credits.models import Account, Entry, Transaction


class Command(BaseCommand):
    help = "Audit the ledger: balanced transactions, cached balances, and each task's money."

    def handle(self, *args, **options):
        problems: list[str] = []
        for path in settings.LEDGER_AUDITS:
            problems.extend(import_string(path)())
        if problems:
            for problem in problems:
                self.stderr.write(problem)
            raise CommandError(f"ledger check failed: {len(problems)} discrepancies")
        self.stdout.write(
            f"ledger ok: {Transaction.objects.count()} transactions, "
            f"{Entry.objects.count()} entries, {Account.objects.count()} accounts balanced"
        )
