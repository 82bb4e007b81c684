"""The API's error model: domain exceptions, and one handler that renders every failure as

    {"error": {"type": ..., "code": ..., "message": ..., "param": ...}}

with the status API.md gives each type.
"""

from __future__ import annotations

import logging
import re

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, JsonResponse
from rest_framework import exceptions
from rest_framework.response import Response

logger = logging.getLogger(__name__)

STATUS = {
    "authentication_error": 401,
    "validation_error": 400,
    "payment_required": 402,
    "forbidden": 403,
    "not_found": 404,
    "conflict": 409,
    "request_too_large": 413,
    "rate_limited": 429,
    "server_error": 500,
}


class ApiError(Exception):
    """A failure with its contract type. Every domain exception derives from one of the
    subclasses below, names its ``code``, and is rendered by the one handler here."""

    type = code = "server_error"

    def __init__(self, message: str, *, code: str | None = None, param: str | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.param = param


class Invalid(ApiError):
    type = code = "validation_error"


class PaymentRequired(ApiError):
    type = code = "payment_required"


class Forbidden(ApiError):
    type = code = "forbidden"


class NotFound(ApiError):
    type = code = "not_found"


class Conflict(ApiError):
    type = code = "conflict"


class ServiceUnavailable(ApiError):
    """A dependency failed (a sandbox provider, say); the contract's ``server_error``."""

    type = code = "server_error"


def error_body(type_: str, code: str, message: str, param: str | None = None) -> dict:
    error = {"type": type_, "code": code, "message": message}
    if param is not None:
        error["param"] = param
    return {"error": error}


def error_response(type_: str, code: str, message: str, param: str | None = None, status=None):
    return Response(error_body(type_, code, message, param), status=status or STATUS[type_])


def _first_validation_error(detail, path: str = "") -> tuple[str | None, str, str] | None:
    """The first (param, code, message) of a DRF ValidationError's nested detail.

    List items are addressed as ``input.files[1].content``; empty entries (the items of a list
    that had no error) are skipped.
    """
    if isinstance(detail, exceptions.ErrorDetail):
        return path or None, detail.code or "invalid", str(detail)
    if isinstance(detail, dict):
        items = detail.items()
    elif isinstance(detail, list):
        items = enumerate(detail)
    else:
        return path or None, "invalid", str(detail)
    for key, value in items:
        if key == "non_field_errors":
            sub = path
        elif isinstance(key, int):
            sub = f"{path}[{key}]"
        elif isinstance(detail, list):
            sub = path
        else:
            sub = f"{path}.{key}" if path else str(key)
        if isinstance(detail, list) and isinstance(value, exceptions.ErrorDetail):
            sub = path  # a field's own list of messages, not a list of items
        found = _first_validation_error(value, sub)
        if found is not None:
            return found
    return None


# DRF's generic codes become specific ones: maxBudget's min_value is max_budget_too_small.
_CODE_SUFFIX = {
    "required": "required",
    "blank": "required",
    "null": "required",
    "invalid": "invalid",
    "min_value": "too_small",
    "max_value": "too_large",
    "max_length": "too_long",
    "min_length": "too_short",
    "invalid_choice": "invalid",
    "not_a_list": "invalid",
    "not_a_dict": "invalid",
    "empty": "required",
}


def _snake(param: str) -> str:
    leaf = param.split(".")[-1].split("[")[0] or param
    return re.sub(r"(?<!^)(?=[A-Z])", "_", leaf).lower()


def exception_handler(exc, context):
    """DRF's single exception handler: every failure under /api/ in the contract's shape."""
    if isinstance(exc, ApiError):
        return error_response(exc.type, exc.code, exc.message, exc.param)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    if isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    if isinstance(exc, exceptions.ParseError):
        return error_response("validation_error", "parse_error", f"Malformed JSON: {exc.detail}")
    if isinstance(exc, exceptions.ValidationError):
        param, code, message = _first_validation_error(exc.detail) or (None, "invalid", "Invalid.")
        if param and code in _CODE_SUFFIX:
            code = f"{_snake(param)}_{_CODE_SUFFIX[code]}"
        return error_response("validation_error", code, message, param)
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        code = exc.get_codes() if isinstance(exc.get_codes(), str) else "not_authenticated"
        response = error_response("authentication_error", code, str(exc.detail))
        response["WWW-Authenticate"] = 'Bearer realm="api"'
        return response
    if isinstance(exc, exceptions.PermissionDenied):
        code = exc.get_codes() if isinstance(exc.get_codes(), str) else "forbidden"
        if code == "permission_denied":
            code = "forbidden"
        return error_response("forbidden", code, str(exc.detail))
    if isinstance(exc, exceptions.NotFound):
        return error_response("not_found", "not_found", "No such resource.")
    if isinstance(exc, exceptions.MethodNotAllowed):
        return error_response("validation_error", "method_not_allowed", str(exc.detail), status=405)
    if isinstance(exc, exceptions.UnsupportedMediaType):
        return error_response("validation_error", "unsupported_media_type", str(exc.detail))
    if isinstance(exc, exceptions.NotAcceptable):
        return error_response("validation_error", "not_acceptable", str(exc.detail))
    if isinstance(exc, exceptions.Throttled):
        wait = max(1, int(exc.wait or 1))
        response = error_response(
            "rate_limited", "rate_limited", f"Too many requests; retry in {wait} s."
        )
        response["Retry-After"] = str(wait)
        return response
    if isinstance(exc, exceptions.APIException):
        return error_response(
            "server_error", "server_error", str(exc.detail), status=exc.status_code
        )

    logger.exception("unhandled error in %s", context.get("view").__class__.__name__)
    return error_response("server_error", "server_error", "An internal error occurred.")


def api_server_error(request, *args, **kwargs):
    """Django's handler500: JSON for the API, the stock page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse(
            error_body("server_error", "server_error", "An internal error occurred."), status=500
        )
    from django.views.defaults import server_error

    return server_error(request, *args, **kwargs)
