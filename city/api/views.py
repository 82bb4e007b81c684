"""The base of every API view: the contract's checks (run as DRF permissions) and idempotency."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.views import APIView

from city.api import idempotency
from city.api.errors import Invalid, NotFound


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
    def principal(self):
        """Who is calling: ``request.auth``, as the accepting authentication class set it."""
        return self.request.auth

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


class _JsonWhateverAccepted(BaseContentNegotiation):
    """Errors in JSON whatever the client accepts (it asked for ``text/event-stream``)."""

    def select_parser(self, request, parsers):
        return parsers[0]

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class StreamView(ApiView):
    """An endpoint whose success is a stream, not JSON: the same checks as every API view, and
    its errors in the contract's JSON shape, never a ``200`` stream with an error inside."""

    content_negotiation_class = _JsonWhateverAccepted


@extend_schema(exclude=True)
class UnknownRoute(ApiView):
    """Any path under /api/ that matches no route: 404 once the caller is authenticated."""

    def _not_found(self, request, *args, **kwargs):
        raise NotFound("No such endpoint.", code="unknown_route")

    get = post = put = patch = delete = head = options = _not_found
