"""Accounts and the append-only double-entry ledger.

Every movement of credits is one ``Transaction`` with two or more ``Entry`` rows that sum to
zero, written only by ``credits.services``. Entries are never updated or deleted (the database
refuses it where it can); a correction is a new, reversing transaction. Each account caches its
balance, which ``check_ledger`` proves equal to the sum of its entries.

Every owner and agent has two accounts: the one they spend from (an owner's *pool*, an agent's
*earnings*) and their *escrow*, which holds what their open tasks may still cost. The platform
has a *fees* account and a *funding* account, the source of granted credits.

A ``Hold`` tracks one hold's life (open, captured, released) and, once captured, the charge and
its fee, so a later refund can claw back from the payee and the fees in proportion. This app
knows nothing of tasks: a hold carries an opaque ``subject`` (a task id) and each movement a
unique ``reference`` so that it cannot happen twice.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from city.identity.models import Agent, Owner


class Account(models.Model):
    class Kind(models.TextChoices):
        POOL = "pool"  # an owner's spendable credits
        EARNINGS = "earnings"  # an agent's spendable credits; may go negative through a clawback
        ESCROW = "escrow"  # what an owner's or agent's open tasks hold
        FEES = "fees"  # the platform's fee income
        FUNDING = "funding"  # the source of granted credits; goes negative as it grants

    kind = models.CharField(max_length=16, choices=Kind.choices)
    owner = models.ForeignKey(Owner, models.PROTECT, null=True, blank=True, related_name="accounts")
    agent = models.ForeignKey(Agent, models.PROTECT, null=True, blank=True, related_name="accounts")
    balance = models.BigIntegerField(default=0)
    # The platform's fee income is split over FEE_ACCOUNT_SHARDS accounts, so that captures
    # running at once do not all queue for one row's lock; 0 for every other account.
    shard = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        permissions = [("grant_credits", "Can grant credits from platform funding")]
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "kind"],
                condition=Q(owner__isnull=False),
                name="account_owner_kind",
            ),
            models.UniqueConstraint(
                fields=["agent", "kind"],
                condition=Q(agent__isnull=False),
                name="account_agent_kind",
            ),
            models.UniqueConstraint(
                fields=["kind", "shard"],
                condition=Q(kind__in=["fees", "funding"]),
                name="account_platform",
            ),
            # Only funding may run negative by design, and agents' earnings through clawbacks;
            # fees can dip below zero only if a refund outruns them, which the ledger allows.
            models.CheckConstraint(
                condition=Q(balance__gte=0) | Q(kind__in=["earnings", "funding", "fees"]),
                name="account_balance_not_negative",
            ),
        ]

    def __str__(self) -> str:
        holder = self.owner or self.agent or "platform"
        return f"{self.kind} of {holder}"


class Transaction(models.Model):
    class Kind(models.TextChoices):
        GRANT = "grant"
        HOLD = "hold"
        CAPTURE = "capture"
        RELEASE = "release"
        REFUND = "refund"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    reference = models.CharField(max_length=200, unique=True)
    subject = models.CharField(max_length=64, blank=True, db_index=True)
    memo = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.reference


class Entry(models.Model):
    class Kind(models.TextChoices):
        GRANT = "grant"
        HOLD = "hold"
        RELEASE = "release"
        CHARGE = "charge"
        PAYOUT = "payout"
        FEE = "fee"
        REFUND = "refund"
        CLAWBACK = "clawback"

    transaction = models.ForeignKey(Transaction, models.PROTECT, related_name="entries")
    account = models.ForeignKey(Account, models.PROTECT, related_name="entries")
    amount = models.BigIntegerField(help_text="signed: positive into the account")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    subject = models.CharField(max_length=64, blank=True)
    balance_after = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "entries"
        indexes = [models.Index(fields=["account", "-id"])]
        constraints = [models.CheckConstraint(condition=~Q(amount=0), name="entry_amount_nonzero")]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount:+d} on account {self.account_id}"


class Hold(models.Model):
    class Status(models.TextChoices):
        OPEN = "open"
        CAPTURED = "captured"
        RELEASED = "released"

    reference = models.CharField(max_length=200, unique=True)
    subject = models.CharField(max_length=64, blank=True, db_index=True)
    payer = models.ForeignKey(Account, models.PROTECT, related_name="holds_paid")
    escrow = models.ForeignKey(Account, models.PROTECT, related_name="holds_escrowed")
    amount = models.BigIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    payee = models.ForeignKey(
        Account, models.PROTECT, null=True, blank=True, related_name="holds_received"
    )
    # The platform fee account the capture paid the fee into (one of FEE_ACCOUNT_SHARDS): a
    # refund takes the fee's share back out of the same one. Null before capture.
    fee_account = models.ForeignKey(
        Account, models.PROTECT, null=True, blank=True, related_name="holds_feeing"
    )
    charged = models.BigIntegerField(default=0)
    fee = models.BigIntegerField(default=0)
    refunded = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(amount__gte=1), name="hold_amount_positive"),
            models.CheckConstraint(
                condition=Q(charged__lte=models.F("amount")), name="hold_charge_within_amount"
            ),
            models.CheckConstraint(
                condition=Q(refunded__gte=0) & Q(refunded__lte=models.F("charged")),
                name="hold_refund_within_charge",
            ),
        ]

    def __str__(self) -> str:
        return self.reference

    @property
    def refundable(self) -> int:
        return self.charged - self.refunded
