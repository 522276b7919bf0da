from django.urls import reverse
from rest_framework import serializers

from kamen_portal.timeinput import BoundedDateTimeField

from ..models import Disconnect, LedgerEntry
from ..selectors import appeal_deadline
from ..usage_explain import weighting_explanation


class HeartbeatItemSerializer(serializers.Serializer):
    """Documentation of one heartbeat; validation happens item by item in the
    ingest service so one bad item never sinks the batch."""

    member = serializers.CharField(help_text="Member number, e.g. KM00001234")
    session = serializers.CharField(help_text="Session id, 1-128 of [A-Za-z0-9._:-]")
    at = BoundedDateTimeField(help_text="Event time, ISO 8601 with UTC offset")
    state = serializers.ChoiceField(choices=["alive", "ended"], default="alive")


class HeartbeatBatchSerializer(serializers.Serializer):
    heartbeats = HeartbeatItemSerializer(many=True)


class RejectedItemSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    code = serializers.CharField()
    error = serializers.CharField()


class HeartbeatResultSerializer(serializers.Serializer):
    accepted = serializers.IntegerField()
    rejected = RejectedItemSerializer(many=True)


class DisconnectSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id")
    node = serializers.CharField(source="node.name")
    session = serializers.CharField(source="session_id")
    duration_seconds = serializers.SerializerMethodField()
    source = serializers.SerializerMethodField()
    incident = serializers.UUIDField(source="incident.public_id", allow_null=True, default=None)
    appeal_deadline = serializers.SerializerMethodField()

    class Meta:
        model = Disconnect
        fields = [
            "id",
            "node",
            "session",
            "started_at",
            "ended_at",
            "duration_seconds",
            "status",
            "source",
            "incident",
            "outcome",
            "credited_minutes",
            "withheld_minutes",
            "outcome_reason",
            "appeal_deadline",
        ]

    def get_duration_seconds(self, obj: Disconnect) -> int | None:
        return int(obj.duration.total_seconds()) if obj.duration else None

    def get_source(self, obj: Disconnect) -> str:
        return "incident" if obj.incident_id else "own"

    def get_appeal_deadline(self, obj: Disconnect) -> str | None:

        deadline = appeal_deadline(disconnect=obj, policy=self.context["policy"])
        return deadline.isoformat() if deadline else None


class LedgerEntrySerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id")
    reverses = serializers.IntegerField(source="reverses.seq", allow_null=True, default=None)
    receipt_url = serializers.SerializerMethodField()
    usage_factor = serializers.SerializerMethodField()
    usage_explanation = serializers.SerializerMethodField()

    class Meta:
        model = LedgerEntry
        fields = [
            "id",
            "seq",
            "kind",
            "minutes",
            "tier",
            "source_kind",
            "source_ref",
            "covered_start",
            "covered_end",
            "policy_version",
            "reverses",
            "expires_before",
            "expires_after",
            "created_at",
            "prev_hash",
            "hash",
            "receipt_url",
            "usage_factor",
            "usage_explanation",
        ]

    def get_usage_factor(self, obj: LedgerEntry) -> str | None:
        """The usage-weighting factor the credit was multiplied by, e.g. "1.60"."""
        return obj.weighting["factor"] if obj.weighting else None

    def get_usage_explanation(self, obj: LedgerEntry) -> str | None:
        return weighting_explanation(obj.weighting)

    def get_receipt_url(self, obj: LedgerEntry) -> str:
        return reverse("compensation:receipt", kwargs={"public_id": obj.public_id})
