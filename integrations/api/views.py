"""Entitlements for nodes and the event feed for integrators."""

import re

from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from compensation.api.authentication import IsNode, NodeTokenAuthentication
from kamen_portal.api import JSONObjectParser, RequestError, error_responses
from members.models import MEMBER_NO_PATTERN

from ..entitlements import entitlements_for_node
from ..events import envelope, iso
from ..models import EventType
from ..selectors import FEED_MAX_LIMIT, events_after
from .authentication import (
    EntitlementThrottle,
    IntegrationThrottle,
    IntegrationTokenAuthentication,
    IsIntegration,
)
from .serializers import (
    EntitlementAnswerSerializer,
    EntitlementBatchRequestSerializer,
    EntitlementBatchSerializer,
    FeedPageSerializer,
    FeedQuerySerializer,
)

_MEMBER_NO = re.compile(MEMBER_NO_PATTERN)

SCOPE_NOTE = (
    "A node learns the entitlement only of members it reported a heartbeat for (any session, "
    "within ENTITLEMENT_SCOPE_DAYS, 30 by default): send a member's first heartbeat when they "
    "connect, then ask. Any other member number answers exactly as a number nobody holds "
    "(`unknown_member`). Throttled per node at ENTITLEMENT_THROTTLE_RATE, counting each member "
    "looked up, not each request."
)


def _answer(entitlement, now) -> dict:
    return {
        "member": entitlement.member_no,
        "entitled": entitlement.entitled(now),
        "until": iso(entitlement.until),
        "status": entitlement.status,
    }


class _NodeView(APIView):
    authentication_classes = [NodeTokenAuthentication]
    permission_classes = [IsNode]
    throttle_classes = [EntitlementThrottle]


class EntitlementView(_NodeView):
    @extend_schema(
        summary="Is this member entitled to connect now, and until when (service nodes)",
        description=SCOPE_NOTE,
        responses={
            200: EntitlementAnswerSerializer,
            **error_responses(
                401,
                404,
                429,
                e404="No member with this number, or not a member of this node (one answer for "
                "both; error: unknown_member)",
                e429="Throttled per node (each member looked up counts): retry after the "
                "Retry-After header",
            ),
        },
    )
    def get(self, request, member_no: str):
        now = timezone.now()
        entitlement = (
            entitlements_for_node(node_id=request.auth.pk, member_nos=[member_no], now=now).get(
                member_no
            )
            if _MEMBER_NO.match(member_no)
            else None
        )
        if entitlement is None:
            return Response(
                {"error": "unknown_member", "detail": _("There is no member with this number.")},
                status=status.HTTP_404_NOT_FOUND,
            )
        return Response({**_answer(entitlement, now), "checked_at": iso(now)})


class EntitlementBatchView(_NodeView):
    parser_classes = [JSONObjectParser]

    @extend_schema(
        summary="Entitlements of up to 1,000 members at once (service nodes)",
        description=SCOPE_NOTE,
        request=EntitlementBatchRequestSerializer,
        responses={
            200: EntitlementBatchSerializer,
            **error_responses(
                400,
                401,
                415,
                429,
                e400="Malformed body, or not 1 to 1,000 member numbers; unknown or "
                "malformed numbers are named in 200's rejected",
                e429="Throttled per node, each member in the batch counting once: retry after "
                "the Retry-After header",
            ),
        },
    )
    def post(self, request):
        serializer = EntitlementBatchRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        numbers = serializer.validated_data["members"]
        now = timezone.now()
        valid = [n for n in numbers if _MEMBER_NO.match(n)]
        found = (
            entitlements_for_node(node_id=request.auth.pk, member_nos=valid, now=now)
            if valid
            else {}
        )
        answers, rejected = [], []
        for index, number in enumerate(numbers):
            entitlement = found.get(number)
            if entitlement is not None:
                answers.append(_answer(entitlement, now))
            else:
                code = "unknown_member" if number in found else "invalid_member_no"
                rejected.append({"index": index, "member": number, "code": code})
        return Response({"checked_at": iso(now), "entitlements": answers, "rejected": rejected})


class EventFeedView(APIView):
    authentication_classes = [IntegrationTokenAuthentication]
    permission_classes = [IsIntegration]
    throttle_classes = [IntegrationThrottle]

    @extend_schema(
        summary="Every event in order, after a cursor (integration token)",
        parameters=[FeedQuerySerializer],
        responses={
            200: FeedPageSerializer,
            **error_responses(
                400,
                401,
                429,
                e400="Bad cursor, limit or type (error: invalid_cursor, invalid_limit, "
                "invalid_type)",
                e401="Missing, invalid or revoked integration token",
            ),
        },
    )
    def get(self, request):
        raw_after = request.query_params.get("after", "0")
        if not (raw_after.isascii() and raw_after.isdigit() and len(raw_after) <= 18):
            raise RequestError(
                "invalid_cursor", _("The cursor must be a `next` value from the feed.")
            )
        raw_limit = request.query_params.get("limit", "100")
        if not (raw_limit.isascii() and raw_limit.isdigit()) or not (
            1 <= int(raw_limit) <= FEED_MAX_LIMIT
        ):
            raise RequestError(
                "invalid_limit", _("The limit must be a whole number from 1 to 500.")
            )
        types = [t for t in request.query_params.get("types", "").split(",") if t]
        unknown = sorted(set(types) - set(EventType.values))
        if unknown:
            raise RequestError(
                "invalid_type", _("Unknown event type: %(type)s.") % {"type": unknown[0]}
            )
        after, limit = int(raw_after), int(raw_limit)
        events = events_after(after=after, limit=limit + 1, types=types)
        page = events[:limit]
        return Response(
            {
                "events": [envelope(e) for e in page],
                "next": str(page[-1].id if page else after),
                "has_more": len(events) > limit,
            }
        )
