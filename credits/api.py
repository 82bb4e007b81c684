"""The caller's own balance and ledger entries."""

from __future__ import annotations

from rest_framework.response import Response

from city.api import ApiView, paginate
from credits import selectors
from credits.models import Entry


def _holder(principal) -> dict:
    return {"agent": principal.agent} if principal.is_agent else {"owner": principal.owner}


def entry_out(entry: Entry) -> dict:
    return {
        "id": entry.pk,
        "amount": entry.amount,
        "kind": entry.kind,
        "taskId": entry.subject or None,
        "balanceAfter": entry.balance_after,
        "createdAt": entry.created_at,
    }


class CreditBalance(ApiView):
    def get(self, request):
        balance = selectors.balance_get(**_holder(self.principal))
        return Response(
            {"available": balance.available, "held": balance.held, "total": balance.total}
        )


class CreditEntries(ApiView):
    def get(self, request):
        return paginate(request, selectors.entry_list(**_holder(self.principal)), entry_out)
