"""The dispute API: the caller files, lists, reads and withdraws its disputes."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from city.api.fields import QueryParams, StrictSerializer
from city.api.pagination import PageParams, paginate
from city.api.schema import IDEMPOTENCY_KEY, error_responses, json_body, paginated, path_id
from city.api.views import ApiView
from disputes import selectors, services
from disputes.models import Status
from disputes.serializers import DisputeInput, DisputeSerializer

DISPUTE_ID = path_id("dispute_id", "The dispute's id (`dsp_…`).")


class TaskDisputes(ApiView):
    @extend_schema(
        operation_id="dispute",
        summary="Dispute a completed task's charge (the task's caller)",
        description="Within `DISPUTE_WINDOW_DAYS` of completion, one open dispute per task; a "
        "task already refunded in full is `409`. A reviewer settles it.",
        tags=["disputes"],
        parameters=[path_id("task_id", "The task's id."), IDEMPOTENCY_KEY],
        request=json_body(DisputeInput),
        responses={201: DisputeSerializer, **error_responses(400, 403, 404, 409)},
    )
    def post(self, request, task_id: str):
        body = DisputeInput(data=request.data)
        body.is_valid(raise_exception=True)
        dispute = services.dispute_file(
            principal=self.principal,
            task_id=task_id,
            reason=body.validated_data["reason"],
            description=body.validated_data["description"],
        )
        return Response(DisputeSerializer.render(dispute), status=201)


class DisputeCollection(ApiView):
    class Params(QueryParams):
        status = serializers.ChoiceField(choices=Status.values, required=False)

    @extend_schema(
        operation_id="listDisputes",
        summary="The disputes the caller filed, newest first",
        tags=["disputes"],
        parameters=[Params, PageParams],
        responses={200: paginated(DisputeSerializer), **error_responses(400, 403)},
    )
    def get(self, request):
        params = self.Params(data=request.query_params)
        params.is_valid(raise_exception=True)
        disputes = selectors.dispute_list(
            principal=self.principal, status=params.validated_data.get("status")
        )
        return paginate(request, disputes, DisputeSerializer)


class DisputeDetail(ApiView):
    @extend_schema(
        operation_id="getDispute",
        summary="A dispute the caller filed",
        tags=["disputes"],
        parameters=[DISPUTE_ID],
        responses={200: DisputeSerializer, **error_responses(403, 404)},
    )
    def get(self, request, dispute_id: str):
        dispute = selectors.dispute_visible(principal=self.principal, dispute_id=dispute_id)
        return Response(DisputeSerializer.render(dispute))


class DisputeWithdraw(ApiView):
    @extend_schema(
        operation_id="withdrawDispute",
        summary="Withdraw a dispute before it is decided (its caller)",
        tags=["disputes"],
        parameters=[DISPUTE_ID, IDEMPOTENCY_KEY],
        request=None,
        responses={200: DisputeSerializer, **error_responses(400, 403, 404, 409)},
    )
    def post(self, request, dispute_id: str):
        StrictSerializer(data=request.data).is_valid(raise_exception=True)
        dispute = services.dispute_withdraw(principal=self.principal, dispute_id=dispute_id)
        return Response(DisputeSerializer.render(dispute))
