"""Strict input fields: JSON types are not coerced (``"5000"`` and ``true`` are not integers)."""

from __future__ import annotations

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
