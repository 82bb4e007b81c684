from __future__ import annotations

from rest_framework import parsers


class JSONParser(parsers.JSONParser):
    """JSON, whatever Content-Type the client sent (curl -d sends a form type by default)."""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        if stream is None:
            return {}
        return super().parse(stream, "application/json", parser_context)
