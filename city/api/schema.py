"""What drf-spectacular needs to describe any app's API: the error body, pages, and helpers the
views' ``@extend_schema`` decorators share.

Imported from ``ApiConfig.ready()`` so the extensions below are registered before any schema is
generated.
"""

from __future__ import annotations

import functools

from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers

from city.api.errors import STATUS


class NestedSerializerName(OpenApiSerializerExtension):
    """Names a view's nested serializer after its view: ``TaskFail.Input`` is ``TaskFailInput``.

    One API class per operation with a nested ``Input`` is the house style; without this every
    ``Input`` would claim the same component name.
    """

    target_class = "rest_framework.serializers.Serializer"
    match_subclasses = True
    priority = -1  # any extension for a specific serializer wins

    @classmethod
    def _matches(cls, target) -> bool:
        return super()._matches(target) and "." in _serializer_class(target).__qualname__

    def get_name(self, auto_schema, direction):
        return _serializer_class(self.target).__qualname__.replace(".", "")

    def map_serializer(self, auto_schema, direction):
        return auto_schema._map_serializer(self.target, direction, bypass_extensions=True)


def _serializer_class(target) -> type:
    return target if isinstance(target, type) else type(target)


class ErrorDetailSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=list(STATUS), help_text="the class of failure")
    code = serializers.CharField(help_text="a stable, specific code, e.g. `max_budget_too_small`")
    message = serializers.CharField(help_text="human text")
    param = serializers.CharField(
        required=False, help_text="the parameter at fault, when there is one (e.g. `maxBudget`)"
    )


class ErrorSerializer(serializers.Serializer):
    """Every failure under /api/."""

    error = ErrorDetailSerializer()


class PaginationSerializer(serializers.Serializer):
    page = serializers.IntegerField(min_value=1)
    pageSize = serializers.IntegerField(min_value=1, max_value=100)
    total = serializers.IntegerField(min_value=0)
    totalPages = serializers.IntegerField(min_value=0, help_text="ceil(total / pageSize)")


@functools.cache
def paginated(item: type[serializers.Serializer]) -> type[serializers.Serializer]:
    """``{"data": [item, ...], "pagination": {...}}``: one class per item, however often asked."""
    name = item.__name__.removesuffix("Serializer")
    return type(
        f"Paginated{name}ListSerializer",
        (serializers.Serializer,),
        {
            "__module__": item.__module__,
            "__doc__": f"A page of {name} objects.",
            "data": item(many=True),
            "pagination": PaginationSerializer(),
        },
    )


_ERROR_DESCRIPTIONS = {
    400: "`validation_error`: a malformed body, an unknown or invalid parameter.",
    401: "`authentication_error`: no credentials, or an unknown or revoked secret.",
    402: "`payment_required`: the caller's available credits are below `maxBudget`.",
    403: "`forbidden`: a secret of the wrong kind for the route, a suspended agent, or a caller "
    "who may see the task but not do this.",
    404: "`not_found`: no such object visible to the caller.",
    409: "`conflict`: the object's state does not allow this, or the `Idempotency-Key` was "
    "reused with another body or is still in flight.",
    429: "`rate_limited`: too many requests; retry after `Retry-After` seconds.",
}


def error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    """The error responses of an operation; every one can answer ``401`` and ``429``."""
    codes = sorted({401, 429, *statuses})
    return {
        code: OpenApiResponse(response=ErrorSerializer, description=_ERROR_DESCRIPTIONS[code])
        for code in codes
    }


def json_body(serializer) -> dict:
    """A request body as JSON: the parser takes any Content-Type, but clients should send this."""
    return {"application/json": serializer}


IDEMPOTENCY_KEY = OpenApiParameter(
    name="Idempotency-Key",
    type={"type": "string", "minLength": 1, "maxLength": 255},
    location=OpenApiParameter.HEADER,
    required=False,
    description=(
        "Makes a retry safe. The first response for a key is replayed to a retry with the same "
        "body; the same key with another body is `409` (`idempotency_key_reused`)."
    ),
)


def path_id(name: str, description: str) -> OpenApiParameter:
    return OpenApiParameter(
        name=name, type=OpenApiTypes.STR, location=OpenApiParameter.PATH, description=description
    )
