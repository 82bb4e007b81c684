from __future__ import annotations

from django.conf import settings
from django.http import JsonResponse

from city.api.errors import error_body


class RequestSizeLimitMiddleware:
    """Refuse an API body over MAX_REQUEST_BYTES before anything reads it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith("/api/"):
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > settings.MAX_REQUEST_BYTES:
                return JsonResponse(
                    error_body(
                        "request_too_large",
                        "request_too_large",
                        f"The request body exceeds {settings.MAX_REQUEST_BYTES} bytes.",
                    ),
                    status=413,
                )
        return self.get_response(request)
