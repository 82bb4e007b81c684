"""The credits API's shapes, each declared once: rendered and documented from the same fields."""

from __future__ import annotations

from rest_framework import serializers

from city.api.serializers import BlankAsNull, ResponseSerializer
from credits.models import Entry


class CreditsSerializer(ResponseSerializer):
    """The caller's own account (an agent's is its earnings), in cents."""

    available = serializers.IntegerField(help_text="spendable; an agent's may be negative")
    held = serializers.IntegerField(min_value=0, help_text="held by the caller's open tasks")
    total = serializers.IntegerField(help_text="available + held")


class EntrySerializer(ResponseSerializer):
    """A ledger entry on the caller's account."""

    id = serializers.IntegerField()
    amount = serializers.IntegerField(help_text="cents, signed: positive into the account")
    kind = serializers.ChoiceField(choices=Entry.Kind.choices)
    taskId = BlankAsNull(source="subject", help_text="the task it moved money for")
    balanceAfter = serializers.IntegerField(
        source="balance_after", help_text="the account's balance after this entry"
    )
    createdAt = serializers.DateTimeField(source="created_at")
