"""``POST /api/v1/memberships/events/`` (platform token): the billing
platform's purchases, renewals, refunds and tier changes, in batches.

Thin: the request's shape is checked here, every rule lives in
compensation/services/platform_events.py.
"""

from __future__ import annotations

import hashlib
import json

from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from kamen_portal.api import JSONObjectParser, error_responses
from kamen_portal.http import declared_body_size
from kamen_portal.machine_auth import BearerTokenAuthentication, PerMachineThrottle, auth_is
from kamen_portal.timeinput import BOUNDS_DESCRIPTION, BoundedDateTimeField, year_bounds
from members.models import MEMBER_NO_PATTERN, Tier

from ..models import EventKind, Platform
from ..models.memberships import MAX_KEY_DAYS
from ..services.platform_events import EventIn, membership_events_apply, rejection
from ..services.platforms import platform_authenticate

MAX_EVENTS = 500
MAX_EVENTS_BODY_BYTES = 1024 * 1024
KEY_PATTERN = r"^[\x21-\x7e]{1,200}\Z"  # printable ASCII, no spaces


# --- Platform events (platform token) -------------------------------------------


class PlatformTokenAuthentication(BearerTokenAuthentication):
    realm = "platforms"
    scheme_name = "platformToken"
    scheme_description = "Billing platform token"
    lookup = staticmethod(platform_authenticate)
    message_header = gettext_lazy("Use the header: Authorization: Bearer <platform token>.")
    message_malformed = gettext_lazy("Invalid platform token.")
    message_invalid = gettext_lazy("Invalid or revoked platform token.")


IsPlatform = auth_is(Platform)


class PlatformRateThrottle(PerMachineThrottle):
    scope = "platform"
    model = Platform
    rate_setting = "PLATFORM_THROTTLE_RATE"


class EventItemSerializer(serializers.Serializer):
    key = serializers.RegexField(KEY_PATTERN)
    type = serializers.ChoiceField(choices=EventKind.values)
    member = serializers.RegexField(MEMBER_NO_PATTERN, required=False)
    email = serializers.EmailField(required=False, max_length=254)
    occurred_at = BoundedDateTimeField()
    days = serializers.IntegerField(min_value=1, max_value=MAX_KEY_DAYS, required=False)
    tier = serializers.ChoiceField(choices=Tier.values, required=False)
    refunds = serializers.RegexField(KEY_PATTERN, required=False)

    def validate(self, attrs):
        if bool(attrs.get("member")) == bool(attrs.get("email")):
            raise serializers.ValidationError(
                _("Name the member by `member` or `email`, not both.")
            )
        kind = attrs["type"]
        if kind in (EventKind.PURCHASE, EventKind.RENEWAL) and not attrs.get("days"):
            raise serializers.ValidationError(_("A purchase or renewal needs `days`."))
        if kind == EventKind.REFUND and not attrs.get("refunds"):
            raise serializers.ValidationError(_("A refund needs `refunds`: the key it refunds."))
        if kind == EventKind.TIER_CHANGE and not attrs.get("tier"):
            raise serializers.ValidationError(_("A tier change needs `tier`."))
        return attrs


_EVENT_SCHEMA = {
    "type": "object",
    "required": ["key", "type", "occurred_at"],
    "properties": {
        "key": {
            "type": "string",
            "pattern": "^[!-~]{1,200}$",
            "description": "The platform's idempotency key (unique per platform)",
        },
        "type": {"type": "string", "enum": EventKind.values},
        "member": {
            "type": "string",
            "pattern": "^KM[0-9]{8}$",
            "description": "Member number; or `email` instead",
        },
        "email": {
            "type": "string",
            "format": "email",
            "description": "For a member the portal may not know yet",
        },
        "occurred_at": {
            "type": "string",
            "format": "date-time",
            "description": "Event time at the platform, ISO 8601 with offset. "
            + BOUNDS_DESCRIPTION.format(min=year_bounds()[0], max=year_bounds()[1])
            + " (rejected: invalid)",
        },
        "days": {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_KEY_DAYS,
            "description": "purchase/renewal: days bought; refund: days refunded (default all)",
        },
        "tier": {"type": "string", "enum": Tier.values},
        "refunds": {
            "type": "string",
            "pattern": "^[!-~]{1,200}$",
            "description": "refund: the key of the purchase or renewal refunded",
        },
    },
}


@extend_schema_field(
    {
        "anyOf": [_EVENT_SCHEMA, {}],
        "description": "One event. Each is checked on its own: a bad one is answered "
        "`rejected` with a code at its index, and the others still count.",
    }
)
class EventItemField(serializers.JSONField):
    pass


class EventBatchSerializer(serializers.Serializer):
    """The request body (documentation: the view checks the batch itself
    and each event on its own, so one bad event never sinks the batch)."""

    events = serializers.ListField(child=EventItemField(), max_length=MAX_EVENTS)


class EventResultSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position in `events`")
    key = serializers.CharField(allow_null=True)
    status = serializers.ChoiceField(
        choices=["applied", "pending", "superseded", "rejected"],
        help_text="pending: a refund waiting for its purchase; superseded: a tier older than "
        "the member's newest",
    )
    replayed = serializers.BooleanField(help_text="The key was seen before: nothing changed")
    member = serializers.CharField(allow_null=True, help_text="Member number")
    member_created = serializers.BooleanField(
        help_text="An account was created for `email`, waiting for its first sign-in"
    )
    entry = serializers.UUIDField(allow_null=True, help_text="The ledger entry written")
    expires_at = serializers.DateTimeField(allow_null=True)
    tier = serializers.CharField(allow_null=True)
    error = serializers.CharField(
        required=False,
        help_text="rejected only: invalid, unknown_member, staff_account, key_reused, "
        "occurred_in_future, refund_target_invalid, already_refunded, nothing_to_refund, "
        "too_far_ahead, unavailable (the database refused it for now: nothing was applied, "
        "send it again)",
    )
    detail = serializers.CharField(required=False)


class EventBatchResultSerializer(serializers.Serializer):
    results = EventResultSerializer(many=True)


class MembershipEventsView(APIView):
    authentication_classes = [PlatformTokenAuthentication]
    permission_classes = [IsPlatform]
    throttle_classes = [PlatformRateThrottle]
    parser_classes = [JSONObjectParser]

    @extend_schema(
        operation_id="membership_events",
        summary="Post membership events from the billing platform (platform token)",
        description=(
            "Purchases, renewals, refunds and tier changes, each under the platform's "
            "idempotency key: a repeated key changes nothing and answers the event's result "
            "with `replayed`; the same key with other content is rejected (`key_reused`). "
            "Out of order: a refund whose purchase has not arrived is `pending` and applied "
            "with it; the tier follows the newest event time. Unknown e-mail addresses get an "
            "account waiting for its first sign-in (MEMBERSHIP_EVENTS_UNKNOWN_MEMBERS=create) "
            "or are rejected (`reject`)."
        ),
        request=EventBatchSerializer,
        responses={
            200: EventBatchResultSerializer,
            **error_responses(
                400,
                401,
                413,
                415,
                429,
                e400="Malformed body: not a JSON object, nested too deeply, no `events` list, "
                "or more than 500 events (batch_too_large)",
                e401="Missing, invalid or revoked platform token",
                e413="A body over 1 MB",
            ),
        },
        examples=[
            OpenApiExample(
                "A purchase and its refund",
                request_only=True,
                value={
                    "events": [
                        {
                            "key": "order-1001",
                            "type": "purchase",
                            "member": "KM00001234",
                            "occurred_at": "2026-11-30T10:00:00+08:00",
                            "days": 30,
                            "tier": "gold",
                        },
                        {
                            "key": "refund-1001",
                            "type": "refund",
                            "member": "KM00001234",
                            "occurred_at": "2026-11-30T12:00:00+08:00",
                            "refunds": "order-1001",
                        },
                    ]
                },
            )
        ],
    )
    def post(self, request):
        if declared_body_size(request) > MAX_EVENTS_BODY_BYTES:
            return Response(
                {"error": "body_too_large", "detail": _("The request body is larger than 1 MB.")},
                status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            )
        raw_events = request.data.get("events")
        if not isinstance(raw_events, list):
            return Response(
                {"error": "invalid", "detail": _("The body needs an `events` list.")},
                status=status.HTTP_400_BAD_REQUEST,
            )
        if len(raw_events) > MAX_EVENTS:
            return Response(
                {
                    "error": "batch_too_large",
                    "detail": _("At most %(n)d events per request.") % {"n": MAX_EVENTS},
                },
                status=status.HTTP_400_BAD_REQUEST,
            )
        now = timezone.now()
        results: list[dict | None] = [None] * len(raw_events)
        valid: list[tuple[int, EventIn]] = []
        for index, raw in enumerate(raw_events):
            event, problem = _validate(raw)
            if problem is not None:
                results[index] = problem
            else:
                valid.append((index, event))
        applied = membership_events_apply(
            platform=request.auth, events=[e for _i, e in valid], now=now
        )
        for (index, _event), result in zip(valid, applied, strict=True):
            results[index] = result
        body = [{"index": i, "replayed": False, **r} for i, r in enumerate(results)]
        return Response({"results": body}, status=status.HTTP_200_OK)


def _validate(raw) -> tuple[EventIn | None, dict | None]:
    key = raw.get("key") if isinstance(raw, dict) else None
    key = key if isinstance(key, str) and len(key) <= 200 else None
    if not isinstance(raw, dict):
        return None, rejection(
            key=None, code="invalid", detail=_("An event must be a JSON object.")
        )
    item = EventItemSerializer(data=raw)
    if not item.is_valid():
        errors = item.errors
        field = next(iter(errors), None)
        message = errors[field][0] if field else _("The event is invalid.")
        detail = str(message) if field in (None, "non_field_errors") else f"{field}: {message}"
        return None, rejection(key=key, code="invalid", detail=detail)
    data = item.validated_data
    digest = hashlib.sha256(
        json.dumps(raw, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    ).hexdigest()
    return (
        EventIn(
            key=data["key"],
            kind=data["type"],
            occurred_at=data["occurred_at"],
            digest=digest,
            member_no=data.get("member", ""),
            email=data.get("email", ""),
            days=data.get("days"),
            tier=data.get("tier", ""),
            refunds=data.get("refunds", ""),
        ),
        None,
    )
