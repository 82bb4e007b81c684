"""Response shapes: each declared once as a serializer that both documents and renders.

drf-spectacular describes a ``ResponseSerializer`` from its fields like any other. Rendering
does not go through DRF's per-field machinery, which deep-copies every field for each serializer
instance and walks each attribute through several calls: the fields are compiled once per class
into a plan of (key, attribute getter, converter), and ``render`` applies it. Only field types
whose output is the attribute itself, or which the plan knows how to convert, may be declared;
anything else is refused when the plan is compiled, not silently rendered differently.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from operator import attrgetter

from django.db.models import Manager
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

# Fields whose JSON is the attribute as stored (the JSON renderer formats datetimes as DRF does).
_AS_STORED = (
    serializers.BooleanField,
    serializers.CharField,  # and RegexField
    serializers.ChoiceField,
    serializers.DateTimeField,
    serializers.IntegerField,
    serializers.JSONField,
)


class BlankAsNull(serializers.CharField):
    """A text column that stores ``""`` for "none"; the API shows ``null``."""

    def __init__(self, **kwargs):
        super().__init__(allow_null=True, **kwargs)


class BlankChoiceAsNull(serializers.ChoiceField):
    def __init__(self, choices, **kwargs):
        super().__init__(choices, allow_null=True, **kwargs)


@extend_schema_field({"type": "object", "additionalProperties": True})
class StoredJSON(serializers.JSONField):
    """Free-form JSON as stored: a JSON object."""


def _converter(field: serializers.Field) -> Callable | None:
    if getattr(field, "as_stored", False):
        return None  # a shape documented by its fields, shown as the caller stored it
    if isinstance(field, BlankAsNull | BlankChoiceAsNull):
        return lambda value: value or None
    if isinstance(field, serializers.ListSerializer):
        child = _converter(field.child)

        def many(value):
            items = value.all() if isinstance(value, Manager) else value
            return [child(item) for item in items] if child else list(items)

        return many
    if isinstance(field, ResponseSerializer):
        return type(field).render
    if isinstance(field, serializers.ListField) and _converter(field.child) is None:
        return None
    if isinstance(field, _AS_STORED):
        return None
    raise TypeError(f"{type(field).__name__} has no compiled rendering; add one to _converter")


def _getter(field: serializers.Field) -> Callable:
    if field.source == "*":
        return lambda instance: instance
    key = field.source
    get = attrgetter(key)
    # A shape renders model instances and plain objects, or a dict (a small result).
    return lambda instance: instance[key] if isinstance(instance, dict) else get(instance)


class ResponseSerializer(serializers.Serializer):
    """A response shape: ``render(obj)`` gives its JSON-ready dict; drf-spectacular its schema."""

    _plan: list[tuple[str, Callable, Callable | None]] | None = None

    @classmethod
    def _compiled(cls) -> list[tuple[str, Callable, Callable | None]]:
        plan = cls.__dict__.get("_plan")
        if plan is None:
            fields = cls().fields
            plan = [(name, _getter(f), _converter(f)) for name, f in fields.items()]
            cls._plan = plan
        return plan

    @classmethod
    def render(cls, instance) -> dict:
        out = {}
        for name, get, convert in cls._compiled():
            value = get(instance)
            out[name] = value if convert is None or value is None else convert(value)
        return out

    @classmethod
    def render_many(cls, instances: Iterable) -> list[dict]:
        render = cls.render
        return [render(instance) for instance in instances]

    def to_representation(self, instance):
        return self.render(instance)
