from django.urls import reverse
from rest_framework import serializers

from kamen_portal.timeinput import BoundedDateTimeField

from ..models import Appeal, AppealEvent, Evidence


class EvidenceSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id")
    url = serializers.SerializerMethodField()

    class Meta:
        model = Evidence
        fields = [
            "id",
            "kind",
            "original_name",
            "content_type",
            "size",
            "width",
            "height",
            "sha256",
            "created_at",
            "url",
        ]

    def get_url(self, obj: Evidence) -> str:
        return reverse(
            "appeals:evidence",
            kwargs={"public_id": obj.appeal.public_id, "evidence_id": obj.public_id},
        )


class EventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AppealEvent
        fields = ["kind", "actor_role", "old_status", "new_status", "message", "created_at"]


class AppealSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    disconnect = serializers.UUIDField(
        source="disconnect.public_id", allow_null=True, default=None, read_only=True
    )
    node = serializers.CharField(source="node.name", allow_null=True, default=None, read_only=True)

    class Meta:
        model = Appeal
        fields = [
            "id",
            "status",
            "disconnect",
            "node",
            "service",
            "claimed_start",
            "claimed_end",
            "description",
            "deadline",
            "sla_due_at",
            "first_response_at",
            "decided_at",
            "decision_reason",
            "credited_minutes",
            "escalated_at",
            "created_at",
        ]


class AppealDetailSerializer(AppealSerializer):
    evidence = EvidenceSerializer(many=True, read_only=True)
    timeline = EventSerializer(source="events", many=True, read_only=True)

    class Meta(AppealSerializer.Meta):
        fields = [*AppealSerializer.Meta.fields, "evidence", "timeline"]


class AppealCreateSerializer(serializers.Serializer):
    """Multipart: the same fields as the page, files under ``screenshots``
    (1-10) and ``logs`` (optional)."""

    submission_token = serializers.UUIDField(required=False)
    disconnect = serializers.UUIDField(required=False)
    claimed_start = BoundedDateTimeField(
        required=False,
        help_text="With a disconnect: optional, may only move its start earlier (extend).",
    )
    claimed_end = BoundedDateTimeField(
        required=False,
        help_text="With a disconnect: optional, may only move its end later (extend); "
        "required when the disconnect never resumed.",
    )
    node = serializers.CharField(required=False, allow_blank=True, max_length=64)
    service = serializers.CharField(required=False, allow_blank=True, max_length=120)
    description = serializers.CharField(max_length=5000)
    screenshots = serializers.ListField(child=serializers.FileField(), required=False)
    logs = serializers.ListField(child=serializers.FileField(), required=False)


class AppealReplySerializer(serializers.Serializer):
    message = serializers.CharField(required=False, allow_blank=True, max_length=5000)
    screenshots = serializers.ListField(child=serializers.FileField(), required=False)
    logs = serializers.ListField(child=serializers.FileField(), required=False)
