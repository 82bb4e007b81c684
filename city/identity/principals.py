"""Who is calling: an owner (token or dashboard session) or an agent (key)."""

from __future__ import annotations

from dataclasses import dataclass

from city.identity.models import Agent, Owner


@dataclass(frozen=True)
class Principal:
    owner: Owner | None = None
    agent: Agent | None = None

    @property
    def kind(self) -> str:
        return "agent" if self.agent is not None else "owner"

    @property
    def is_owner(self) -> bool:
        return self.owner is not None

    @property
    def is_agent(self) -> bool:
        return self.agent is not None

    @property
    def key(self) -> str:
        """A stable string naming this principal, for idempotency keys and rate limits."""
        return f"agent:{self.agent.pk}" if self.agent else f"owner:{self.owner.pk}"


def principal_of(request) -> Principal | None:
    """The caller that an authentication class of ``city.identity.authentication`` accepted."""
    auth = getattr(request, "auth", None)
    return auth if isinstance(auth, Principal) else None
