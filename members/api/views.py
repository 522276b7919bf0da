from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from kamen_portal.api import error_responses

from ..models import MemberProfile
from ..selectors import member_profile_for_user
from .serializers import MeSerializer


class MemberMixin:
    permission_classes = [IsAuthenticated]

    def member(self) -> MemberProfile:
        profile = member_profile_for_user(user=self.request.user)
        if profile is None:
            raise Http404(_("This account has no membership."))
        return profile


class MeView(MemberMixin, APIView):
    @extend_schema(
        summary="The signed-in member and their membership",
        responses={
            200: MeSerializer,
            **error_responses(403, 404, 429, e404="The account has no membership"),
        },
    )
    def get(self, request):
        return Response(MeSerializer(self.member(), context={"now": timezone.now()}).data)
