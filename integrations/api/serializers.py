from rest_framework import serializers

from ..models import EventType

MAX_BATCH = 1000


class EntitlementSerializer(serializers.Serializer):
    member = serializers.CharField(help_text="Member number")
    entitled = serializers.BooleanField(help_text="May connect now")
    until = serializers.DateTimeField(
        allow_null=True, help_text="End of the paid membership (UTC); null: never had one"
    )
    status = serializers.ChoiceField(
        choices=["active", "suspended", "closed"], help_text="Account status"
    )


class EntitlementAnswerSerializer(EntitlementSerializer):
    checked_at = serializers.DateTimeField(help_text="When the portal answered")


class EntitlementBatchRequestSerializer(serializers.Serializer):
    members = serializers.ListField(
        child=serializers.CharField(max_length=32, allow_blank=True),
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


class EventSerializer(serializers.Serializer):
    id = serializers.UUIDField(help_text="Event id: receivers deduplicate on it")
    sequence = serializers.IntegerField(help_text="Position in the feed (cursor)")
    type = serializers.ChoiceField(choices=EventType.values)
    created_at = serializers.DateTimeField()
    data = serializers.DictField(help_text="Per type; see docs/integration.md")


class EventPageSerializer(serializers.Serializer):
    events = EventSerializer(many=True)
    next = serializers.CharField(help_text="Pass as ?after= to read on")
    has_more = serializers.BooleanField()
