"""Strict input fields: JSON types are not coerced (``"5000"`` and ``true`` are not integers)."""

from __future__ import annotations

import json
import math
import re

from rest_framework import serializers


class StrictIntegerField(serializers.IntegerField):
    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictCharField(serializers.CharField):
    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictRegexField(serializers.RegexField):
    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictSerializer(serializers.Serializer):
    """Rejects parameters it does not know, as Stripe's API does."""

    def run_validation(self, data=serializers.empty):
        if data is None:  # a JSON ``null`` body is not an object either
            self.to_internal_value(data)
        return super().run_validation(data)

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError(
                {
                    "non_field_errors": [
                        serializers.ErrorDetail("Expected a JSON object.", "invalid_body")
                    ]
                }
            )
        unknown = [key for key in data if key not in self.fields]
        if unknown:
            raise serializers.ValidationError(
                {
                    unknown[0]: [
                        serializers.ErrorDetail(
                            f"Unknown parameter: {unknown[0]}.", "unknown_parameter"
                        )
                    ]
                }
            )
        return super().to_internal_value(data)


# What PostgreSQL's jsonb cannot hold: NUL, and UTF-16 surrogates that pair with nothing (Python
# keeps a lone "\ud800" from JSON as is). Non-finite numbers (1e400 parses as inf) are not JSON.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _unstorable(value) -> str | None:
    if isinstance(value, str) and _UNSTORABLE.search(value):
        return "a NUL character or an unpaired surrogate"
    if isinstance(value, float) and not math.isfinite(value):
        return "a number that is not finite"
    return None


def _detail_at(trail, message: str, code: str):
    """A DRF error detail nested along ``trail`` (a linked list of keys and list indices), as
    the handler reads it back into a ``param`` such as ``input.files[1].content``."""
    detail = [serializers.ErrorDetail(message, code)]
    while trail is not None:
        step, trail = trail
        detail = {step: detail}
    return detail


def json_storable(value, *, max_bytes: int, too_large_code: str):
    """Refuse JSON larger than ``max_bytes`` once serialized, or that a database cannot store.

    The size is checked first, so the walk never sees more than ``max_bytes``. The walk uses an
    explicit stack, and each path is a linked list of (step, parent): JSON nested deeper than
    Python's recursion allows must not crash it, nor cost a copy of its path per value.
    """
    encoded = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    size = len(encoded.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise serializers.ValidationError(
            serializers.ErrorDetail(
                f"Serialized, this is {size} bytes; at most {max_bytes} are accepted.",
                too_large_code,
            )
        )
    stack: list[tuple[object, tuple | None]] = [(value, None)]
    while stack:
        item, trail = stack.pop()
        if isinstance(item, dict):
            for key, child in item.items():
                if _unstorable(key):
                    raise serializers.ValidationError(
                        _detail_at(
                            (json.dumps(key)[1:-1], trail),
                            "A key holds a NUL character or an unpaired surrogate.",
                            "invalid_json_value",
                        )
                    )
                stack.append((child, (key, trail)))
        elif isinstance(item, list):
            stack.extend((child, (i, trail)) for i, child in enumerate(item))
        elif (problem := _unstorable(item)) is not None:
            raise serializers.ValidationError(
                _detail_at(trail, f"The value holds {problem}.", "invalid_json_value")
            )
    return value


class QueryParams(serializers.Serializer):
    """A query string's parameters. One given empty (``?status=``) is a ``400``, as the schema's
    non-empty values say, where DRF would read it as not given."""

    def to_internal_value(self, data):
        blank = [name for name in self.fields if name in data and data.get(name) == ""]
        if blank:
            raise serializers.ValidationError(
                {
                    blank[0]: [
                        serializers.ErrorDetail(f"{blank[0]} must not be empty.", "blank_parameter")
                    ]
                }
            )
        return super().to_internal_value(data)
