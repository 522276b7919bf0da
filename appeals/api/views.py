import uuid

from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.response import Response
from rest_framework.views import APIView

from compensation.models import Disconnect, Node
from kamen_portal.api import FormParser, JSONObjectParser, MultiPartParser, error_responses
from kamen_portal.http import declared_body_size
from members.api.views import MemberMixin

from ..evidence import MAX_REQUEST_BYTES, EvidenceError
from ..selectors import appeal_for_viewer, member_appeals
from ..services import AppealError, appeal_file, appeal_reply, appeal_withdraw
from .serializers import (
    AppealCreateSerializer,
    AppealDetailSerializer,
    AppealReplySerializer,
    AppealSerializer,
)

# Refusals about the state of things (not the request's shape) are a 409:
# another open appeal, a status the action no longer applies to, a
# disconnect still going on, an appeal that already holds 10 screenshots.
_CONFLICT_CODES = {"duplicate", "conflict", "disconnect_ongoing", "too_many_files"}
_PARSERS = [MultiPartParser, FormParser, JSONObjectParser]


def _error(exc) -> Response:
    body = {"error": exc.code, "detail": exc.message}
    if getattr(exc, "existing", None) is not None:
        body["existing"] = str(exc.existing.public_id)
    if isinstance(exc, EvidenceError) and exc.filename:
        body["file"] = exc.filename
    if isinstance(exc, AppealError) and exc.code in _CONFLICT_CODES:
        code = status.HTTP_409_CONFLICT
    elif exc.code == "not_found":
        code = status.HTTP_404_NOT_FOUND
    else:
        code = status.HTTP_400_BAD_REQUEST
    return Response(body, status=code)


def _refuse_oversized(request) -> Response | None:
    if declared_body_size(request) > MAX_REQUEST_BYTES:
        return Response(
            {
                "error": "body_too_large",
                "detail": _("The upload is too large: at most %(n)d MB per submission.")
                % {"n": MAX_REQUEST_BYTES // (1024 * 1024)},
            },
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    return None


class AppealListCreateView(MemberMixin, generics.ListAPIView):
    serializer_class = AppealSerializer
    parser_classes = _PARSERS

    def get_queryset(self):
        return member_appeals(member=self.member())

    @extend_schema(
        summary="My appeals, newest first",
        responses={
            200: AppealSerializer(many=True),
            **error_responses(
                400,
                403,
                404,
                429,
                e400="The page is not a whole number (invalid_page)",
                e404="The account has no membership, or no such page",
            ),
        },
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="File an appeal with evidence",
        request={"multipart/form-data": AppealCreateSerializer},
        responses={
            201: AppealDetailSerializer,
            **error_responses(
                400,
                403,
                404,
                409,
                413,
                415,
                429,
                e404="That disconnect was not found, or the account has no membership",
                e409="An open appeal already covers this time (existing names it), "
                "or the disconnect has not ended yet",
            ),
        },
    )
    def post(self, request):
        too_large = _refuse_oversized(request)
        if too_large is not None:
            return too_large
        member = self.member()
        incoming = AppealCreateSerializer(
            data={
                **{k: v for k, v in request.data.items() if k not in ("screenshots", "logs")},
                "screenshots": request.FILES.getlist("screenshots"),
                "logs": request.FILES.getlist("logs"),
            }
        )
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        disconnect = None
        if data.get("disconnect"):
            disconnect = Disconnect.objects.filter(
                public_id=data["disconnect"], member=member
            ).first()
            if disconnect is None:
                return Response(
                    {"error": "not_found", "detail": _("That disconnect was not found.")},
                    status=404,
                )
        elif not (data.get("claimed_start") and data.get("claimed_end")):
            return Response(
                {
                    "error": "invalid_span",
                    "detail": _("Give claimed_start and claimed_end, or a disconnect."),
                },
                status=400,
            )
        node = Node.objects.filter(name=data["node"]).first() if data.get("node") else None
        try:
            appeal = appeal_file(
                screenshots=data.get("screenshots", []),
                logs=data.get("logs", []),
                member=member,
                actor=request.user,
                claimed_start=data.get("claimed_start"),
                claimed_end=data.get("claimed_end"),
                description=data["description"],
                submission_token=data.get("submission_token") or uuid.uuid4(),
                now=timezone.now(),
                disconnect=disconnect,
                node=node,
                service=data.get("service", ""),
            )
        except (AppealError, EvidenceError) as exc:
            return _error(exc)
        return Response(AppealDetailSerializer(appeal).data, status=status.HTTP_201_CREATED)


class _OwnAppealView(MemberMixin, APIView):
    # One of the signed-in member's appeals; anyone else's is a 404. (A
    # comment, not a docstring: drf-spectacular would publish it.)

    parser_classes = _PARSERS

    def _appeal(self, request, public_id):
        appeal = appeal_for_viewer(user=request.user, public_id=public_id)
        if appeal is None or appeal.member.user_id != request.user.pk:
            raise Http404(_("That appeal was not found."))
        return appeal


class AppealDetailView(_OwnAppealView):
    @extend_schema(
        summary="One of my appeals, with evidence and timeline",
        responses={200: AppealDetailSerializer, **error_responses(403, 404, 429)},
    )
    def get(self, request, public_id):
        return Response(AppealDetailSerializer(self._appeal(request, public_id)).data)


class AppealReplyView(_OwnAppealView):
    @extend_schema(
        summary="Add a message and/or evidence",
        request={"multipart/form-data": AppealReplySerializer},
        responses={
            200: AppealDetailSerializer,
            **error_responses(
                400,
                403,
                404,
                409,
                413,
                415,
                429,
                e409="The appeal is closed, or already holds 10 screenshots",
            ),
        },
    )
    def post(self, request, public_id):
        too_large = _refuse_oversized(request)
        if too_large is not None:
            return too_large
        appeal = self._appeal(request, public_id)
        incoming = AppealReplySerializer(
            data={
                "message": request.data.get("message", ""),
                "screenshots": request.FILES.getlist("screenshots"),
                "logs": request.FILES.getlist("logs"),
            }
        )
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        try:
            appeal = appeal_reply(
                screenshots=data.get("screenshots", []),
                logs=data.get("logs", []),
                appeal=appeal,
                member_user=request.user,
                message=data.get("message", ""),
                now=timezone.now(),
            )
        except (AppealError, EvidenceError) as exc:
            return _error(exc)
        return Response(AppealDetailSerializer(appeal).data)


class AppealWithdrawView(_OwnAppealView):
    @extend_schema(
        summary="Withdraw an open appeal",
        request=None,
        responses={
            200: AppealDetailSerializer,
            **error_responses(
                400,
                403,
                404,
                409,
                415,
                429,
                e400="A body was sent and is malformed (none is needed)",
                e409="The appeal is no longer open",
            ),
        },
    )
    def post(self, request, public_id):
        appeal = self._appeal(request, public_id)
        try:
            appeal = appeal_withdraw(appeal=appeal, member_user=request.user, now=timezone.now())
        except AppealError as exc:
            return _error(exc)
        return Response(AppealDetailSerializer(appeal).data)
