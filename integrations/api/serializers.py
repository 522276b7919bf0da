import re

from rest_framework import serializers

from members.models import MemberStatus

from ..models import EventType

_TYPE = "(" + "|".join(re.escape(t) for t in EventType.values) + ")"
TYPES_PATTERN = f"^({_TYPE}(,{_TYPE})*)?$"

MAX_BATCH = 1000


class EntitlementSerializer(serializers.Serializer):
    member = serializers.CharField(help_text="Member number")
    entitled = serializers.BooleanField(help_text="May connect now")
    until = serializers.DateTimeField(
        allow_null=True, help_text="End of the paid membership (UTC); null: never had one"
    )
    status = serializers.ChoiceField(choices=MemberStatus.choices, help_text="Account status")


class EntitlementAnswerSerializer(EntitlementSerializer):
    checked_at = serializers.DateTimeField(help_text="When the portal answered")


class StrictCharField(serializers.CharField):
    """A JSON string only (the stock field turns 0 into "0")."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class EntitlementBatchRequestSerializer(serializers.Serializer):
    members = serializers.ListField(
        child=StrictCharField(max_length=32, allow_blank=True),
        min_length=1,
        max_length=MAX_BATCH,
        help_text="Member numbers, 1 to 1,000",
    )


class EntitlementRejectedSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    member = serializers.CharField()
    code = serializers.ChoiceField(choices=["invalid_member_no", "unknown_member"])


class EntitlementBatchSerializer(serializers.Serializer):
    checked_at = serializers.DateTimeField()
    entitlements = EntitlementSerializer(many=True)
    rejected = EntitlementRejectedSerializer(many=True)


class FeedEventSerializer(serializers.Serializer):
    id = serializers.UUIDField(help_text="Event id: receivers deduplicate on it")
    sequence = serializers.IntegerField(help_text="Position in the feed (cursor)")
    type = serializers.ChoiceField(choices=EventType.values)
    created_at = serializers.DateTimeField()
    data = serializers.DictField(help_text="Per type; see docs/integration.md")


class FeedPageSerializer(serializers.Serializer):
    events = FeedEventSerializer(many=True)
    next = serializers.CharField(help_text="Pass as ?after= to read on")
    has_more = serializers.BooleanField()


class FeedQuerySerializer(serializers.Serializer):
    """The feed's query parameters, for the schema (the view checks them with
    its own error codes)."""

    after = serializers.RegexField(
        r"^[0-9]{1,18}$",
        required=False,
        help_text="Cursor: the `next` of the previous page, or 0 (default) for the beginning",
    )
    limit = serializers.IntegerField(
        min_value=1, max_value=500, required=False, help_text="1 to 500 (default 100)"
    )
    types = serializers.RegexField(
        TYPES_PATTERN,
        required=False,
        allow_blank=True,
        help_text="Comma-separated event types to include (default: all)",
    )
