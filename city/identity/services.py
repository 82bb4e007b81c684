"""Identity writes: owners, agents, their secrets."""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from city.api.errors import Invalid
from city.identity import epoch, roles
from city.identity.ids import new_secret, secret_hash
from city.identity.models import TASK_TYPE_PATTERN, Agent, AgentOffer, ApiSecret, Owner


class IdentityError(Invalid):
    """Bad input to an identity service (a duplicate email, an unknown operator...)."""

    code = "invalid_identity"


@dataclass(frozen=True)
class IssuedSecret:
    record: ApiSecret
    secret: str  # shown once, never stored


@transaction.atomic
def owner_create(
    *, email: str, password: str | None = None, staff: bool = False, reviewer: bool = False
) -> tuple[Owner, IssuedSecret]:
    """An owner with a login and one owner token; its credit pool is ``credits``' to open.

    ``staff`` may look at everything in the admin (the Staff group); ``reviewer`` also acts on
    disputes (the Reviewers group, staff too). Neither is a superuser.
    """
    User = get_user_model()
    email = email.strip().lower()
    if not email or "@" not in email:
        raise IdentityError(f"not an email address: {email!r}")
    if User.objects.filter(username=email).exists():
        raise IdentityError(f"an owner with email {email} already exists")
    user = User.objects.create_user(
        username=email, email=email, password=password, is_staff=staff or reviewer
    )
    if staff or reviewer:
        roles.ensure_groups()
        names = [roles.REVIEWERS] if reviewer else [roles.STAFF]
        user.groups.add(*Group.objects.filter(name__in=names))
    owner = Owner.objects.create(user=user)
    return owner, owner_token_issue(owner=owner)


@transaction.atomic
def agent_create(
    *, operator: Owner, name: str, offers: dict[str, int], max_concurrent: int = 10
) -> tuple[Agent, IssuedSecret]:
    if not name.strip():
        raise IdentityError("an agent needs a name")
    _validate_terms(offers=offers, max_concurrent=max_concurrent)
    agent = Agent.objects.create(
        operator=operator, name=name.strip(), max_concurrent=max_concurrent
    )
    AgentOffer.objects.bulk_create(
        AgentOffer(agent=agent, task_type=t, price=p) for t, p in offers.items()
    )
    return agent, agent_key_issue(agent=agent)


@transaction.atomic
def agent_update(*, agent: Agent, offers: dict[str, int], max_concurrent: int) -> Agent:
    """Replace the agent's task types and prices and set its concurrency limit.

    An offer whose task type stays keeps its row (its price updated if it changed); one left
    out is deleted. Tasks already assigned keep the price they were hired at (``Task.price``).
    """
    _validate_terms(offers=offers, max_concurrent=max_concurrent)
    # Two edits of the same agent at once (two tabs) would otherwise interleave their deletes
    # and inserts into a mix of both, or collide on the unique task type.
    agent = Agent.objects.select_for_update().get(pk=agent.pk)
    existing = {offer.task_type: offer for offer in agent.offers.all()}
    agent.offers.exclude(task_type__in=list(offers)).delete()
    changed = []
    for task_type, price in offers.items():
        offer = existing.get(task_type)
        if offer is not None and offer.price != price:
            offer.price = price
            changed.append(offer)
    AgentOffer.objects.bulk_update(changed, ["price"])
    AgentOffer.objects.bulk_create(
        AgentOffer(agent=agent, task_type=t, price=p)
        for t, p in offers.items()
        if t not in existing
    )
    if agent.max_concurrent != max_concurrent:
        agent.max_concurrent = max_concurrent
        agent.save(update_fields=["max_concurrent"])
    return agent


def _validate_terms(*, offers: dict[str, int], max_concurrent: int) -> None:
    """What agent_create and agent_update both require of an agent's offers and limit."""
    if not offers:
        raise IdentityError("an agent needs at least one task type")
    if max_concurrent < 1:
        raise IdentityError("max concurrent must be at least 1")
    for task_type, price in offers.items():
        validate_task_type(task_type)
        if price < 1:
            raise IdentityError(f"the price of {task_type} must be at least 1 cent")


def validate_task_type(task_type: str) -> None:
    if not re.fullmatch(TASK_TYPE_PATTERN, task_type):
        raise IdentityError(f"task type must match {TASK_TYPE_PATTERN}: {task_type!r}")


def _hint(secret: str) -> str:
    # The kind prefix and the last four characters, as Stripe shows keys: enough to tell
    # secrets apart, too little (24 bits) to matter if the database leaks.
    return f"{secret[:4]}…{secret[-4:]}"


def owner_token_issue(*, owner: Owner, name: str = "") -> IssuedSecret:
    return _secret_issue(ApiSecret.Kind.OWNER, "own_", name=name, owner=owner)


def agent_key_issue(*, agent: Agent, name: str = "") -> IssuedSecret:
    return _secret_issue(ApiSecret.Kind.AGENT, "agk_", name=name, agent=agent)


def _secret_issue(kind: str, prefix: str, *, name: str, **holder) -> IssuedSecret:
    secret = new_secret(prefix)
    record = ApiSecret.objects.create(
        kind=kind, secret_hash=secret_hash(secret), hint=_hint(secret), name=name, **holder
    )
    return IssuedSecret(record=record, secret=secret)


def secrets_revoke(*, secrets: QuerySet[ApiSecret]) -> int:
    """Revoke every secret of ``secrets`` not revoked yet; how many were."""
    revoked = secrets.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
    if revoked:
        epoch.move()  # no process may answer for them from what it keeps
    return revoked


def secret_revoke(*, record: ApiSecret) -> ApiSecret:
    secrets_revoke(secrets=ApiSecret.objects.filter(pk=record.pk))
    record.refresh_from_db()
    return record


def agents_set_status(*, agents: QuerySet[Agent], status: str) -> int:
    """Suspend or reactivate agents; how many changed. A suspended agent is refused on every
    request (403 agent_suspended) and never hired or routed to."""
    if status not in Agent.Status.values:
        raise IdentityError(f"unknown agent status {status!r}")
    changed = agents.exclude(status=status).update(status=status)
    if changed:
        epoch.move()  # a suspended agent is refused on its next request, whichever process
    return changed
