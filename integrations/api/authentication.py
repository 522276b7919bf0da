"""Integration tokens for the event feed (``Authorization: Bearer kmi_…``),
and the per-node throttle of entitlement look-ups."""

from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension

from compensation.models import Node
from kamen_portal.machine_auth import BearerTokenAuthentication, PerMachineThrottle, auth_is

from ..models import IntegrationToken
from ..services.tokens import integration_token_authenticate


class IntegrationTokenAuthentication(BearerTokenAuthentication):
    realm = "integrations"
    lookup = staticmethod(integration_token_authenticate)
    message_header = _("Use the header: Authorization: Bearer <integration token>.")
    message_malformed = _("Invalid integration token.")
    message_invalid = _("Invalid or revoked integration token.")


IsIntegration = auth_is(IntegrationToken)


class IntegrationThrottle(PerMachineThrottle):
    """Per integration token (the default per-user throttle has no user)."""

    scope = "integration"
    model = IntegrationToken
    rate_setting = "INTEGRATION_THROTTLE_RATE"


class EntitlementThrottle(PerMachineThrottle):
    """Per node, with its own rate: look-ups sit on the connect path and
    come far more often than heartbeat batches."""

    scope = "entitlement"
    model = Node
    rate_setting = "ENTITLEMENT_THROTTLE_RATE"


class IntegrationTokenScheme(OpenApiAuthenticationExtension):
    target_class = IntegrationTokenAuthentication
    name = "integrationToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "Integration token (kmi_…) issued by an operator",
        }
