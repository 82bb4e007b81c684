from __future__ import annotations

import io

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.core.handlers.wsgi import LimitedStream
from django.http import JsonResponse

from city.api.errors import error_body


def _too_large() -> JsonResponse:
    return JsonResponse(
        error_body(
            "request_too_large",
            "request_too_large",
            f"The request body exceeds {settings.MAX_REQUEST_BYTES} bytes.",
        ),
        status=413,
    )


def _raw_stream(request):
    """The request's undecoded body stream, where reading it to its end is safe, else None.

    Django reads a body only up to ``Content-Length``, so a chunked body (which has none) reads
    as empty. Under ASGI the server has already collected the body; under WSGI, a server that
    de-chunks bodies says so with ``wsgi.input_terminated`` (gunicorn does).
    """
    environ = getattr(request, "environ", None)
    if environ is None:  # ASGI
        return request._stream
    if environ.get("wsgi.input_terminated"):
        return environ["wsgi.input"]
    return None


class RequestSizeLimitMiddleware:
    """Refuse an API body over MAX_REQUEST_BYTES before anything parses it, whether its size is
    announced by ``Content-Length`` or it comes chunked, which is then read like any other."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith("/api/"):
            length = request.META.get("CONTENT_LENGTH")
            if length:
                try:
                    if int(length) > settings.MAX_REQUEST_BYTES:
                        return _too_large()
                except ValueError:
                    pass
            elif "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
                stream = _raw_stream(request)
                if stream is not None:
                    body = stream.read(settings.MAX_REQUEST_BYTES + 1)
                    if len(body) > settings.MAX_REQUEST_BYTES:
                        return _too_large()
                    request.META["CONTENT_LENGTH"] = str(len(body))
                    request._stream = LimitedStream(io.BytesIO(body), len(body))
        return self.get_response(request)


class ApiHostMiddleware:
    """A ``Host`` outside ALLOWED_HOSTS is refused under /api/ in the contract's error body.

    Django would raise DisallowedHost from the first ``get_host()`` and answer with an HTML
    page (the debug page under DEBUG).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith("/api/"):
            try:
                request.get_host()
            except DisallowedHost:
                return JsonResponse(  # logged once, as every 4xx, by django.request
                    error_body(
                        "validation_error",
                        "invalid_host",
                        "The Host header names a host this server does not serve.",
                    ),
                    status=400,
                )
        return self.get_response(request)
