"""``POST /api/v1/alerts/alertmanager/``: the Prometheus Alertmanager webhook.

Alerts that carry a ``kamen_node`` label (the node's name in the portal) open
an outage incident for that node while they fire and close it when they
resolve; the incident services do the work (``incident_alert_firing`` /
``incident_alert_resolved``), keyed on the alert's fingerprint and start, so
Alertmanager's repeats and retries change nothing. The outage starts at the
node's last accepted heartbeat, at most ``ALERT_OUTAGE_LOOKBACK_MINUTES``
before the alert's ``startsAt`` (``alert_outage_start``): the rule's ``for``
period is paid too.

Authentication: ``Authorization: Bearer <ALERTMANAGER_TOKEN>``, its own token
(not a node token: a node must not be able to open incidents for other nodes),
compared in constant time. With ``ALERTMANAGER_TOKEN`` unset the receiver is
off and answers 401 ``receiver_disabled``.

Like the heartbeat batch, each alert is checked on its own: one that cannot be
used (no ``kamen_node`` label, an unknown node, a bad time) is listed in the
200's ``ignored`` with its index and a code, and the others still count. A 4xx
would make Alertmanager retry the whole group forever.
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from kamen_portal.api import JSONObjectParser, error_responses
from kamen_portal.machine_auth import MachinePrincipal
from kamen_portal.timeinput import BoundedDateTimeField

from ..services.alerts import NODE_LABEL, AlertIgnored, alert_receive

MAX_ALERTS = 1000


class AlertmanagerTokenAuthentication(BaseAuthentication):
    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        expected = settings.ALERTMANAGER_TOKEN
        if not expected:
            raise exceptions.AuthenticationFailed(
                gettext_lazy("The Alertmanager receiver is off (ALERTMANAGER_TOKEN is not set)."),
                code="receiver_disabled",
            )
        if len(parts) != 2 or parts[0].lower() != b"bearer":
            raise exceptions.NotAuthenticated(
                gettext_lazy("Use the header: Authorization: Bearer <Alertmanager token>.")
            )
        if not hmac.compare_digest(parts[1], expected.encode()):
            raise exceptions.AuthenticationFailed(
                gettext_lazy("Invalid Alertmanager token."), code="invalid_token"
            )
        return MachinePrincipal("alertmanager", "alertmanager"), "alertmanager"

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="alertmanager"'


class IsAlertmanager(BasePermission):
    def has_permission(self, request, view) -> bool:
        return request.auth == "alertmanager"


class AlertmanagerTokenScheme(OpenApiAuthenticationExtension):
    target_class = AlertmanagerTokenAuthentication
    name = "alertmanagerToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "ALERTMANAGER_TOKEN (Alertmanager webhook_config http_config.authorization)",
        }


class AlertmanagerRateThrottle(SimpleRateThrottle):
    """Per client address: Alertmanager posts once per group and interval,
    so this only stops a runaway sender."""

    scope = "alertmanager"
    rate = "120/minute"

    def get_rate(self) -> str:
        return self.rate

    def get_cache_key(self, request, view) -> str:
        return f"throttle:alertmanager:{self.get_ident(request)}"


class AlertSerializer(serializers.Serializer):
    """One alert as Alertmanager sends it (webhook payload version 4)."""

    status = serializers.ChoiceField(choices=["firing", "resolved"])
    labels = serializers.DictField(child=serializers.CharField(allow_blank=True, max_length=1000))
    annotations = serializers.DictField(
        child=serializers.CharField(allow_blank=True, max_length=10000), required=False
    )
    startsAt = BoundedDateTimeField()  # noqa: N815 - Alertmanager's field names
    endsAt = BoundedDateTimeField(required=False, allow_null=True, zero_is_null=True)  # noqa: N815
    fingerprint = serializers.RegexField(r"^[0-9A-Za-z]{1,64}\Z")
    generatorURL = serializers.CharField(required=False, allow_blank=True)  # noqa: N815


class AlertmanagerPayloadSerializer(serializers.Serializer):
    alerts = serializers.ListField(child=serializers.JSONField(), max_length=MAX_ALERTS)


class IgnoredAlertSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position in `alerts`")
    error = serializers.CharField(
        help_text="invalid, no_node_label, unknown_node, starts_out_of_range, ends_before_start"
    )
    detail = serializers.CharField()


class AlertmanagerResultSerializer(serializers.Serializer):
    opened = serializers.IntegerField(help_text="Incidents opened")
    resolved = serializers.IntegerField(help_text="Incidents resolved (their payout starts)")
    unchanged = serializers.IntegerField(help_text="Alerts already known (repeats, retries)")
    ignored = IgnoredAlertSerializer(many=True)


_ALERT_SCHEMA = {
    "type": "object",
    "required": ["status", "labels", "startsAt", "fingerprint"],
    "properties": {
        "status": {"type": "string", "enum": ["firing", "resolved"]},
        "labels": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": f"`{NODE_LABEL}` names the node (its name in the portal)",
        },
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
        "startsAt": {"type": "string", "format": "date-time"},
        "endsAt": {"type": "string", "format": "date-time", "nullable": True},
        "fingerprint": {"type": "string", "pattern": "^[0-9A-Za-z]{1,64}$"},
        "generatorURL": {"type": "string"},
    },
}
_REQUEST_SCHEMA = {
    "type": "object",
    "required": ["alerts"],
    "description": "Alertmanager's webhook payload (version 4); fields other than "
    "`alerts` (receiver, status, groupLabels, ...) are accepted and not used.",
    "properties": {
        "alerts": {
            "type": "array",
            "maxItems": MAX_ALERTS,
            "items": {
                "anyOf": [_ALERT_SCHEMA, {}],
                "description": "One alert. Each is checked on its own: one that cannot be "
                "used is listed in the response's `ignored` with its index and reason, and "
                "the others still count.",
            },
        }
    },
}


def _reason(code: str, detail: str, index: int) -> dict:
    return {"index": index, "error": code, "detail": detail}


class AlertmanagerWebhookView(APIView):
    authentication_classes = [AlertmanagerTokenAuthentication]
    permission_classes = [IsAlertmanager]
    throttle_classes = [AlertmanagerRateThrottle]
    parser_classes = [JSONObjectParser]

    @extend_schema(
        request={"application/json": _REQUEST_SCHEMA},
        responses={
            200: AlertmanagerResultSerializer,
            **error_responses(
                400,
                401,
                413,
                415,
                429,
                e400="Malformed body: not JSON, no `alerts` list, or more than 1,000 alerts",
                e401="Missing or wrong ALERTMANAGER_TOKEN (invalid_token), or the receiver "
                "is off (receiver_disabled)",
            ),
        },
        summary="Open and resolve node incidents from Prometheus Alertmanager",
        description="A firing alert opens an outage of the node named by its `kamen_node` "
        "label from the node's last accepted heartbeat, at most ALERT_OUTAGE_LOOKBACK_MINUTES "
        "(default 15) before the alert's `startsAt` (so the rule's `for` period is paid); "
        "`startsAt` itself when the node never beat or beat after it. The resolution closes "
        "it at `endsAt` and pays the node's members once.",
        examples=[
            OpenApiExample(
                "A node down",
                request_only=True,
                value={
                    "version": "4",
                    "status": "firing",
                    "receiver": "kamen-portal",
                    "alerts": [
                        {
                            "status": "firing",
                            "labels": {"alertname": "KamenServiceNodeDown", NODE_LABEL: "sh-01"},
                            "annotations": {"summary": "Service node sh-01 is down"},
                            "startsAt": "2026-11-26T10:00:00+08:00",
                            "endsAt": "0001-01-01T00:00:00Z",
                            "fingerprint": "b0f3a1c2d4e5f607",
                        }
                    ],
                },
            )
        ],
    )
    def post(self, request):
        payload = AlertmanagerPayloadSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        now = timezone.now()
        counts = {"opened": 0, "resolved": 0, "unchanged": 0}
        ignored = []
        for index, raw in enumerate(payload.validated_data["alerts"]):
            problem, outcome = self._handle(index, raw, now)
            if problem:
                ignored.append(problem)
            else:
                counts[outcome] += 1
        return Response({**counts, "ignored": ignored}, status=status.HTTP_200_OK)

    def _handle(self, index: int, raw, now) -> tuple[dict | None, str | None]:
        alert = AlertSerializer(data=raw if isinstance(raw, dict) else {})
        if not isinstance(raw, dict) or not alert.is_valid():
            fields = alert.errors if isinstance(raw, dict) else {}
            field = next(iter(fields), None)
            detail = (
                f"{field}: {fields[field][0]}" if field else _("An alert must be a JSON object.")
            )
            return _reason("invalid", str(detail), index), None
        data = alert.validated_data
        try:
            outcome = alert_receive(
                status=data["status"],
                fingerprint=data["fingerprint"],
                labels=data["labels"],
                starts_at=data["startsAt"],
                ends_at=data.get("endsAt"),
                now=now,
            )
        except AlertIgnored as exc:
            return _reason(exc.code, exc.message, index), None
        return None, outcome
