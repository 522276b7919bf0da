"""``POST /api/v1/card-keys/redeem/`` (member session): redeem a card key.
Thin: every rule lives in compensation/services/card_keys.py."""

from __future__ import annotations

from django.urls import reverse
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from kamen_portal.api import JSONObjectParser, error_responses
from members.api.views import MemberMixin
from members.models import Tier
from members.security import client_ip

from ..services.card_keys import CardKeyError, card_key_redeem


class RedeemSerializer(serializers.Serializer):
    key = serializers.CharField(
        max_length=64,
        trim_whitespace=True,
        help_text="The card key as printed, e.g. 7K2M9-QX4TP-H8N3R-WC6ZD (case, spaces and "
        "dashes do not matter)",
    )


class RedemptionSerializer(serializers.Serializer):
    entry = serializers.UUIDField(help_text="The ledger entry that added the time")
    receipt_url = serializers.CharField(help_text="The entry's receipt (member session)")
    days = serializers.IntegerField(help_text="Days added")
    tier = serializers.ChoiceField(choices=Tier.choices, help_text="The member's tier now")
    expires_at = serializers.DateTimeField(help_text="The member's new expiry")


class CardKeyRedeemView(MemberMixin, APIView):
    parser_classes = [JSONObjectParser]

    @extend_schema(
        operation_id="card_key_redeem",
        summary="Redeem a card key (卡密) for membership time",
        description=(
            "Adds the key's days (and tier) to the signed-in member's membership as one ledger "
            "entry. A key works once. A key that never existed, one already used, one past "
            "its date and one voided give the same 404 `invalid_key`; after "
            "CARD_KEY_MEMBER_FAILURE_LIMIT wrong keys per member (or CARD_KEY_IP_FAILURE_LIMIT "
            "per address) every attempt is refused with 429 `locked_out` for "
            "CARD_KEY_LOCKOUT_MINUTES."
        ),
        request=RedeemSerializer,
        responses={
            200: RedemptionSerializer,
            **error_responses(
                400,
                403,
                404,
                409,
                415,
                429,
                e400="No `key`, or longer than 64 characters (invalid); malformed body",
                e409="The membership would run more than 100 years ahead (too_far_ahead); "
                "the key stays unused",
                e403="Not signed in, CSRF check failed, or the membership is suspended or "
                "closed (account_inactive)",
                e404="Not a redeemable key (invalid_key: unknown, used, expired or voided "
                "alike), or the account has no membership",
                e429="Too many wrong keys (locked_out), the check is unavailable (try_later), "
                "or throttled: retry after the Retry-After header",
            ),
        },
    )
    def post(self, request):
        member = self.member()
        data = RedeemSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            redemption = card_key_redeem(
                member=member,
                key=data.validated_data["key"],
                client_ip=client_ip(request) or "",
                now=timezone.now(),
            )
        except CardKeyError as exc:
            code = {
                "account_inactive": status.HTTP_403_FORBIDDEN,
                "locked_out": status.HTTP_429_TOO_MANY_REQUESTS,
                "try_later": status.HTTP_429_TOO_MANY_REQUESTS,
                "too_far_ahead": status.HTTP_409_CONFLICT,
            }.get(exc.code, status.HTTP_404_NOT_FOUND)
            response = Response({"error": exc.code, "detail": exc.message}, status=code)
            if exc.retry_after:
                response["Retry-After"] = str(exc.retry_after)
            return response
        return Response(
            {
                "entry": str(redemption.entry.public_id),
                "receipt_url": reverse("compensation:receipt", args=[redemption.entry.public_id]),
                "days": redemption.days,
                "tier": redemption.tier,
                "expires_at": redemption.expires_at.isoformat(),
            }
        )
