"""``GET /api/v1/status/``: the public summary of the status page (DESIGN §6):
overall state, every node as a component with its state and 90-day uptime,
the open incidents with their latest update, upcoming maintenance."""

from __future__ import annotations

from django.urls import reverse
from django.utils import timezone
from django.utils.translation import get_language
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

from kamen_portal.api import error_responses

from ..status import ComponentState, incident_label, incident_phase, latest_update, status_overview

STATES = ComponentState.VALUES


class UpdateSerializer(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=[
            "investigating",
            "identified",
            "monitoring",
            "resolved",
            "scheduled",
            "in_progress",
            "completed",
        ]
    )
    message = serializers.CharField()
    posted_at = serializers.DateTimeField()


class IncidentSummarySerializer(serializers.Serializer):
    id = serializers.UUIDField()
    kind = serializers.ChoiceField(
        choices=["node_silent", "mass_drop", "outage", "degraded", "maintenance"]
    )
    label = serializers.CharField(
        help_text="故障 / 维护 (Incident / Maintenance), as on every page"
    )
    title = serializers.CharField()
    phase = serializers.ChoiceField(
        choices=["scheduled", "in_progress", "completed", "ongoing", "resolved"]
    )
    started_at = serializers.DateTimeField()
    ended_at = serializers.DateTimeField(allow_null=True)
    nodes = serializers.ListField(
        child=serializers.CharField(), help_text="Node names; empty when all nodes are affected"
    )
    url = serializers.CharField()
    latest_update = UpdateSerializer(allow_null=True)


class ComponentSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    state = serializers.ChoiceField(choices=STATES)
    uptime_90d = serializers.DecimalField(
        max_digits=5,
        decimal_places=2,
        allow_null=True,
        help_text="Percent of the last 90 days not down (null: no data yet)",
    )


class StatusSummarySerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=STATES)
    components = ComponentSerializer(many=True)
    incidents = IncidentSummarySerializer(many=True)
    maintenance = IncidentSummarySerializer(
        many=True, help_text="Maintenance in progress and scheduled, soonest first"
    )
    updated_at = serializers.DateTimeField()


class StatusThrottle(AnonRateThrottle):
    scope = "status"
    rate = "120/minute"


def _incident(incident, now) -> dict:
    update = latest_update(incident)
    return {
        "id": incident.public_id,
        "kind": incident.kind,
        "label": incident_label(incident),
        "title": incident.title,
        "phase": incident_phase(incident, now),
        "started_at": incident.started_at,
        "ended_at": incident.ended_at,
        "nodes": [] if incident.scope == "all" else [n.name for n in incident.nodes.all()],
        "url": reverse("compensation:incident", kwargs={"public_id": incident.public_id}),
        "latest_update": None
        if update is None
        else {
            "status": update.status,
            "message": update.message_en if get_language() == "en" else update.message_zh,
            "posted_at": update.posted_at,
        },
    }


class StatusSummaryView(APIView):
    authentication_classes: list = []  # public: the same for everyone
    permission_classes = [AllowAny]
    throttle_classes = [StatusThrottle]

    @extend_schema(
        summary="Public service status: components, open incidents, maintenance",
        responses={
            200: StatusSummarySerializer,
            **error_responses(429, e429="Throttled: retry after the Retry-After header"),
        },
        auth=[],
    )
    def get(self, request):
        now = timezone.now()
        overview = status_overview(now=now)
        body = {
            "state": overview.overall,
            "components": [
                {
                    "id": c.node.public_id,
                    "name": c.node.name,
                    "state": c.state,
                    "uptime_90d": c.uptime,
                }
                for c in overview.components
            ],
            "incidents": [_incident(i, now) for i in overview.active],
            "maintenance": [
                _incident(i, now) for i in overview.maintenance_now + overview.upcoming
            ],
            "updated_at": overview.updated_at,
        }
        response = Response(StatusSummarySerializer(body).data)
        response["Cache-Control"] = "public, max-age=15"
        return response
