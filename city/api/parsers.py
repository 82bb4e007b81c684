from __future__ import annotations

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    """JSON, whatever Content-Type the client sent (curl -d sends a form type by default)."""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        if stream is None:
            return {}
        try:
            return super().parse(stream, "application/json", parser_context)
        except RecursionError:
            raise ParseError("JSON nested too deeply.") from None
