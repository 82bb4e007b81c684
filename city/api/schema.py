"""What drf-spectacular needs to describe any app's API: the error body, pages, and helpers the
views' ``@extend_schema`` decorators share.

Imported from ``ApiConfig.ready()`` so the extensions below are registered before any schema is
generated.
"""

from __future__ import annotations

import functools

from drf_spectacular.extensions import (
    OpenApiSerializerExtension,
    OpenApiSerializerFieldExtension,
)
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


class StrictSerializerSchema(NestedSerializerName):
    """A ``StrictSerializer`` refuses keys it does not declare (``400 unknown_parameter``): its
    schema says so with ``additionalProperties: false``. Named as any other serializer."""

    target_class = "city.api.fields.StrictSerializer"
    priority = -0.5  # above NestedSerializerName; a serializer's own extension wins

    @classmethod
    def _matches(cls, target) -> bool:
        return OpenApiSerializerExtension._matches.__func__(cls, target)

    def get_name(self, auto_schema, direction):
        name = _serializer_class(self.target).__qualname__
        return name.replace(".", "") if "." in name else None

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        return {**schema, "additionalProperties": False}


class NonBlankCharSchema(OpenApiSerializerFieldExtension):
    """A string field that trims whitespace and refuses blanks refuses ``"  "`` too: its schema
    asks for one character that is not whitespace."""

    target_class = "city.api.fields.StrictCharField"
    match_subclasses = True

    def map_serializer_field(self, auto_schema, direction):
        schema = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        field = self.target
        if field.trim_whitespace and not field.allow_blank and "pattern" not in schema:
            schema["pattern"] = r"\S"
            schema["minLength"] = max(schema.get("minLength", 0), 1)
        return schema


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
    413: "`request_too_large`: the body is over `MAX_REQUEST_BYTES`.",
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


def document_request_too_large(result, generator, request, public):
    """A drf-spectacular postprocessing hook: every operation that takes a body may answer
    ``413`` (the size limit is checked before any view, so no view declares it)."""
    for item in result.get("paths", {}).values():
        for method, operation in item.items():
            if method in ("post", "put", "patch"):
                operation.setdefault("responses", {}).setdefault(
                    "413",
                    {
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                        },
                        "description": _ERROR_DESCRIPTIONS[413],
                    },
                )
    return result


# What an operation creates, and the operations that take its id: OpenAPI links, so that a
# client generator (or schemathesis' stateful phase) can follow a task from its submit.
_LINKS = {
    "submit": ("task_id", "$response.body#/id"),
    "submitAsAgent": ("task_id", "$response.body#/id"),
    "dispute": ("dispute_id", "$response.body#/id"),
}


def link_created_objects(result, generator, request, public):
    """A drf-spectacular postprocessing hook: the ``201`` of each creating operation links to
    the operations that take the created object's id in their path."""
    operations = [
        (path, operation)
        for path, item in result.get("paths", {}).items()
        for operation in item.values()
        if isinstance(operation, dict) and "operationId" in operation
    ]
    for _path, creating in operations:
        link = _LINKS.get(creating["operationId"])
        created = creating.get("responses", {}).get("201")
        if link is None or created is None:
            continue
        param, value = link
        links = {}
        for path, operation in operations:
            if "{" + param + "}" not in path or path.count("{") != 1:
                continue
            links[operation["operationId"]] = {
                "operationId": operation["operationId"],
                "parameters": {param: value},
            }
        if links:
            created["links"] = links
    return result
