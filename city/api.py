"""The base of every API view: the contract's checks, idempotency and pagination."""

from __future__ import annotations

import math

from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from city import idempotency
from city.errors import Invalid, NotFound
from city.principals import Principal, principal_of


class _Replay(Exception):
    def __init__(self, response: HttpResponse):
        self.response = response


class ApiView(APIView):
    """Authentication, method, kind of principal (permissions), then idempotency, then the view."""

    allowed_kinds: tuple[str, ...] = ("owner", "agent")
    _idempotency = None

    def get_allowed_kinds(self, method: str) -> tuple[str, ...]:
        return self.allowed_kinds

    @property
    def principal(self) -> Principal:
        return principal_of(self.request)

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        key = request.headers.get("Idempotency-Key")
        if request.method == "POST" and key is not None:
            if not key.strip():
                raise Invalid(
                    "Idempotency-Key must not be empty.",
                    code="idempotency_key_invalid",
                    param="Idempotency-Key",
                )
            data = request.data  # a body that does not parse fails here and is never stored
            result = idempotency.claim(
                principal=self.principal.key,
                key=key,
                method=request.method,
                path=request.path,
                data=data,
            )
            if isinstance(result, HttpResponse):
                raise _Replay(result)
            self._idempotency = result

    def handle_exception(self, exc):
        if isinstance(exc, _Replay):
            return exc.response
        return super().handle_exception(exc)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if self._idempotency is not None:
            idempotency.finish(self._idempotency, response)
            self._idempotency = None
        return response


@extend_schema(exclude=True)
class UnknownRoute(ApiView):
    """Any path under /api/ that matches no route: 404 once the caller is authenticated."""

    def _not_found(self, request, *args, **kwargs):
        raise NotFound("No such endpoint.", code="unknown_route")

    get = post = put = patch = delete = head = options = _not_found


class PageParams(serializers.Serializer):
    page = serializers.IntegerField(min_value=1, default=1)
    pageSize = serializers.IntegerField(min_value=1, max_value=100, default=20)


def paginate(request, queryset, serialize) -> Response:
    """The contract's page: ``{"data": [...], "pagination": {...}}``, newest rows as ordered."""
    params = PageParams(data=request.query_params)
    params.is_valid(raise_exception=True)
    page, size = params.validated_data["page"], params.validated_data["pageSize"]
    total = queryset.count()
    # A page past the end is empty without asking the database for an absurd OFFSET.
    rows = list(queryset[(page - 1) * size : page * size]) if (page - 1) * size < total else []
    return Response(
        {
            "data": [serialize(row) for row in rows],
            "pagination": {
                "page": page,
                "pageSize": size,
                "total": total,
                "totalPages": math.ceil(total / size),
            },
        }
    )
