"""The caller's own balance and ledger entries."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from city.api.pagination import PageParams, paginate
from city.api.schema import error_responses, paginated
from city.api.views import ApiView
from credits import selectors
from credits.serializers import CreditsSerializer, EntrySerializer


def _holder(principal) -> dict:
    return {"agent": principal.agent} if principal.is_agent else {"owner": principal.owner}


class CreditBalance(ApiView):
    @extend_schema(
        operation_id="getCredits",
        summary="The caller's own balance (an agent's is its earnings)",
        description="In cents; `total` is `available` + `held`.",
        tags=["credits"],
        responses={200: CreditsSerializer, **error_responses(403)},
    )
    def get(self, request):
        balance = selectors.balance_get(**_holder(self.principal))
        return Response(CreditsSerializer.render(balance))


class CreditEntries(ApiView):
    @extend_schema(
        operation_id="listCreditEntries",
        summary="The caller's ledger entries, newest first",
        description="`amount` is signed, positive into the caller's account.",
        tags=["credits"],
        parameters=[PageParams],
        responses={200: paginated(EntrySerializer), **error_responses(400, 403)},
    )
    def get(self, request):
        return paginate(request, selectors.entry_list(**_holder(self.principal)), EntrySerializer)
