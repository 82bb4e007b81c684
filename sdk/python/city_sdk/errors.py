"""The exceptions of the SDK: one per error type of the contract, each carrying its error body."""

from __future__ import annotations

from typing import Any

import httpx


class CityError(Exception):
    """An error answered by City (or, for ``APIConnectionError``, no answer at all)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        body: Any = None,
    ):
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = type
        self.code = code
        self.param = param
        self.body = body

    def __str__(self) -> str:
        where = f" (param: {self.param})" if self.param else ""
        code = f" {self.code}" if self.code else ""
        status = f"{self.status}" if self.status is not None else "no response"
        return f"[{status}{code}] {self.message}{where}"


class AuthenticationError(CityError):
    """401: the secret is missing, unknown or revoked."""


class ValidationError(CityError):
    """400 (and 405, 413): the request's body or parameters were refused."""


class PaymentRequiredError(CityError):
    """402: the caller's available credits are below ``max_budget``; nothing was held."""


class ForbiddenError(CityError):
    """403: the wrong kind of secret for the route, or an action this caller may not take."""


class NotFoundError(CityError):
    """404: no such object, or one this caller may not see."""


class ConflictError(CityError):
    """409: the object is in the wrong state, or an idempotency key was reused."""


class RateLimitError(CityError):
    """429: too many requests; ``retry_after`` is the server's hint in seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class APIError(CityError):
    """A 5xx, or any status the contract does not name."""


class APIConnectionError(CityError):
    """No answer: the connection failed or timed out on every attempt."""


_BY_STATUS: dict[int, type[CityError]] = {
    400: ValidationError,
    401: AuthenticationError,
    402: PaymentRequiredError,
    403: ForbiddenError,
    404: NotFoundError,
    405: ValidationError,
    409: ConflictError,
    413: ValidationError,
    429: RateLimitError,
}


def retry_after_seconds(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds, when it is a number (City sends seconds)."""
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def error_from_response(response: httpx.Response) -> CityError:
    """The exception for an error response, from the contract's body when it has one."""
    try:
        body = response.json()
    except ValueError:
        body = response.text
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        error = {"message": f"HTTP {response.status_code}: {str(body)[:200]}"}
    cls = _BY_STATUS.get(response.status_code, APIError)
    fields = dict(
        status=response.status_code,
        type=error.get("type"),
        code=error.get("code"),
        param=error.get("param"),
        body=body,
    )
    message = error.get("message") or f"HTTP {response.status_code}"
    if cls is RateLimitError:
        return RateLimitError(message, retry_after=retry_after_seconds(response), **fields)
    return cls(message, **fields)
