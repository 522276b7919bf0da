"""Integration tokens for the event feed (``Authorization: Bearer kmi_…``),
and the per-node throttle of entitlement look-ups."""

from django.conf import settings
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission
from rest_framework.throttling import SimpleRateThrottle

from compensation.api.authentication import NodeRateThrottle

from ..models import IntegrationToken
from ..services.tokens import integration_token_authenticate


class IntegrationPrincipal:
    """``request.user`` for a feed consumer: no member or staff rights."""

    is_authenticated = True
    is_active = True
    is_staff = False
    is_superuser = False
    is_anonymous = False

    def __init__(self, token: IntegrationToken):
        self.token = token
        self.pk = None

    def __str__(self) -> str:
        return f"integration:{self.token.name}"


class IntegrationTokenAuthentication(BaseAuthentication):
    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts:
            return None
        if parts[0].lower() != b"bearer" or len(parts) != 2:
            raise exceptions.AuthenticationFailed(
                _("Use the header: Authorization: Bearer <integration token>.")
            )
        try:
            raw = parts[1].decode("ascii")
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed(_("Invalid integration token.")) from exc
        token = integration_token_authenticate(token=raw)
        if token is None:
            raise exceptions.AuthenticationFailed(_("Invalid or revoked integration token."))
        return IntegrationPrincipal(token), token

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="integrations"'


class IsIntegration(BasePermission):
    def has_permission(self, request, view) -> bool:
        return isinstance(request.auth, IntegrationToken)


class IntegrationThrottle(SimpleRateThrottle):
    """Per integration token (the default per-user throttle has no user)."""

    scope = "integration"

    def get_rate(self) -> str:
        return settings.INTEGRATION_THROTTLE_RATE

    def get_cache_key(self, request, view) -> str | None:
        if not isinstance(request.auth, IntegrationToken):
            return None
        return f"throttle:integration:{request.auth.pk}"


class EntitlementThrottle(NodeRateThrottle):
    """Per node, with its own rate: look-ups sit on the connect path and
    come far more often than heartbeat batches."""

    scope = "entitlement"

    def get_rate(self) -> str:
        return settings.ENTITLEMENT_THROTTLE_RATE

    def get_cache_key(self, request, view) -> str | None:
        key = super().get_cache_key(request, view)
        return key and f"{key}:entitlement"


class IntegrationTokenScheme(OpenApiAuthenticationExtension):
    target_class = IntegrationTokenAuthentication
    name = "integrationToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "Integration token (kmi_…) issued by an operator",
        }
