"""Reads of disputes: a dispute is visible to the caller that filed it, and to no one else
over the API (reviewers work in the admin)."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from city.identity.principals import Principal
from disputes.errors import DisputeNotFound
from disputes.models import Dispute


def visible_to(principal: Principal) -> Q:
    if principal.is_agent:
        return Q(caller_agent=principal.agent)
    return Q(caller_owner=principal.owner)


def dispute_visible(*, principal: Principal, dispute_id: str, for_update: bool = False) -> Dispute:
    """The dispute if ``principal`` filed it, else ``DisputeNotFound``."""
    disputes = Dispute.objects.select_for_update() if for_update else Dispute.objects
    dispute = disputes.filter(visible_to(principal), pk=dispute_id).first()
    if dispute is None:
        raise DisputeNotFound(dispute_id)
    return dispute


def dispute_list(*, principal: Principal, status: str | None = None) -> QuerySet[Dispute]:
    """The caller's disputes, newest first."""
    disputes = Dispute.objects.filter(visible_to(principal))
    if status:
        disputes = disputes.filter(status=status)
    return disputes.order_by("-created_at", "-id")
