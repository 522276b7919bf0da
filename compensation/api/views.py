from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.response import Response
from rest_framework.views import APIView

from kamen_portal import metrics
from kamen_portal.api import JSONObjectParser, error_responses
from kamen_portal.http import declared_body_size
from members.api.views import MemberMixin

from ..selectors import member_disconnects, member_ledger
from ..services.ingest import BatchError, heartbeats_ingest
from ..services.policy import policy_current
from .authentication import IsNode, NodeRateThrottle, NodeTokenAuthentication
from .serializers import (
    DisconnectSerializer,
    HeartbeatBatchSerializer,
    HeartbeatResultSerializer,
    LedgerEntrySerializer,
)


class HeartbeatIngestView(APIView):
    authentication_classes = [NodeTokenAuthentication]
    permission_classes = [IsNode]
    throttle_classes = [NodeRateThrottle]
    parser_classes = [JSONObjectParser]

    @extend_schema(
        request=HeartbeatBatchSerializer,
        responses={
            202: HeartbeatResultSerializer,
            **error_responses(
                400,
                401,
                413,
                415,
                429,
                e400="Malformed body (the whole batch); bad items are named in 202's rejected",
                e413="More than 1,000 heartbeats, or a body over 2 MB",
                e415="Not application/json",
                e429="Throttled (per node): retry after the Retry-After header",
            ),
        },
        summary="Report member heartbeats (service nodes only)",
    )
    def post(self, request):
        if declared_body_size(request) > settings.HEARTBEAT_MAX_BODY_BYTES:
            return Response(
                {"error": "body_too_large", "detail": _("The request body is larger than 2 MB.")},
                status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            )
        try:
            result = heartbeats_ingest(node=request.auth, payload=request.data, now=timezone.now())
        except BatchError as exc:
            code = (
                status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
                if exc.code == "batch_too_large"
                else status.HTTP_400_BAD_REQUEST
            )
            return Response({"error": exc.code, "detail": exc.message}, status=code)
        metrics.incr("kamen_heartbeats_ingested_total", result.accepted)
        metrics.incr("kamen_heartbeats_rejected_total", len(result.rejected))
        return Response(
            {"accepted": result.accepted, "rejected": result.rejected},
            status=status.HTTP_202_ACCEPTED,
        )


_MEMBER_LIST_ERRORS = error_responses(
    400,
    403,
    404,
    429,
    e400="The page is not a whole number (invalid_page)",
    e404="The account has no membership, or no such page",
)


class MyDisconnectsView(MemberMixin, generics.ListAPIView):
    serializer_class = DisconnectSerializer

    @extend_schema(
        summary="My detected disconnects, newest first",
        responses={200: DisconnectSerializer(many=True), **_MEMBER_LIST_ERRORS},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        return member_disconnects(member=self.member())

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "policy": policy_current()}


class MyCompensationsView(MemberMixin, generics.ListAPIView):
    serializer_class = LedgerEntrySerializer

    @extend_schema(
        summary="My compensation ledger entries, newest first",
        responses={200: LedgerEntrySerializer(many=True), **_MEMBER_LIST_ERRORS},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        return member_ledger(member=self.member())
