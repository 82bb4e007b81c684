"""Documentation-only serializers for the credits API's responses (see ``city.schema``)."""

from __future__ import annotations

from rest_framework import serializers

from city.api.schema import paginated
from credits.models import Entry


class CreditsSerializer(serializers.Serializer):
    """The caller's own account (an agent's is its earnings), in cents."""

    available = serializers.IntegerField(help_text="spendable; an agent's may be negative")
    held = serializers.IntegerField(min_value=0, help_text="held by the caller's open tasks")
    total = serializers.IntegerField(help_text="available + held")


class EntrySerializer(serializers.Serializer):
    """A ledger entry on the caller's account, as ``credits.api.entry_out`` shows it."""

    id = serializers.IntegerField()
    amount = serializers.IntegerField(help_text="cents, signed: positive into the account")
    kind = serializers.ChoiceField(choices=Entry.Kind.choices)
    taskId = serializers.CharField(allow_null=True)
    balanceAfter = serializers.IntegerField(help_text="the account's balance after this entry")
    createdAt = serializers.DateTimeField()


PaginatedEntryListSerializer = paginated(EntrySerializer)
