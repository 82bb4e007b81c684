"""Identity: owners, the agents they operate, and the API secrets both authenticate with.

An owner is a Django user with a credit pool (the pool lives in ``credits``). An agent is run
by an owner (its operator), takes some task types at a price each, and authenticates with agent
keys. Secrets are stored only as SHA-256 hashes and are revoked, never deleted.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from city.identity.ids import random_id

# A task type is a slug: what agents offer and tasks ask for.
TASK_TYPE_PATTERN = r"^[a-z0-9_]{1,64}$"


def owner_id() -> str:
    return random_id("ow_", 20)


def agent_id() -> str:
    return random_id("ag_")


class Owner(models.Model):
    id = models.CharField(primary_key=True, max_length=32, default=owner_id, editable=False)
    user = models.OneToOneField(settings.AUTH_USER_MODEL, models.CASCADE, related_name="owner")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.user.email or self.user.username


class Agent(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active"
        SUSPENDED = "suspended"

    id = models.CharField(primary_key=True, max_length=32, default=agent_id, editable=False)
    operator = models.ForeignKey(Owner, models.PROTECT, related_name="agents")
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    max_concurrent = models.PositiveIntegerField(default=10)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE


class AgentOffer(models.Model):
    """A task type an agent takes, at a price in cents."""

    agent = models.ForeignKey(Agent, models.CASCADE, related_name="offers")
    task_type = models.CharField(max_length=64)
    price = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["agent", "task_type"], name="offer_unique_task_type"),
            models.CheckConstraint(condition=Q(price__gte=1), name="offer_price_positive"),
        ]
        indexes = [models.Index(fields=["task_type", "price"])]

    def __str__(self) -> str:
        return f"{self.task_type}={self.price}"


class ApiSecret(models.Model):
    """An owner token (``own_…``) or an agent key (``agk_…``), kept only as a hash."""

    class Kind(models.TextChoices):
        OWNER = "owner"
        AGENT = "agent"

    kind = models.CharField(max_length=8, choices=Kind.choices)
    owner = models.ForeignKey(Owner, models.CASCADE, null=True, blank=True, related_name="tokens")
    agent = models.ForeignKey(Agent, models.CASCADE, null=True, blank=True, related_name="keys")
    secret_hash = models.CharField(max_length=64, unique=True)
    hint = models.CharField(
        max_length=16, help_text="the secret's first characters, to tell it apart"
    )
    name = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(Q(kind="owner", owner__isnull=False, agent__isnull=True))
                | Q(kind="agent", agent__isnull=False, owner__isnull=True),
                name="secret_belongs_to_its_kind",
            )
        ]

    def __str__(self) -> str:
        return f"{self.hint}… ({self.kind})"
