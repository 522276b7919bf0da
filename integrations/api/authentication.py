"""Integration tokens for the event feed (``Authorization: Bearer kmi_…``),
and the per-node throttle of entitlement look-ups."""

from django.utils.translation import gettext_lazy as _

from compensation.models import Node
from kamen_portal.machine_auth import BearerTokenAuthentication, PerMachineThrottle, auth_is

from ..models import IntegrationToken
from ..services.tokens import integration_token_authenticate
from .serializers import MAX_BATCH


class IntegrationTokenAuthentication(BearerTokenAuthentication):
    realm = "integrations"
    scheme_name = "integrationToken"
    scheme_description = "Integration token (kmi_…) issued by an operator"
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
    come far more often than heartbeat batches. Each member looked up
    counts, so a batch of 1,000 costs what 1,000 single look-ups cost."""

    scope = "entitlement"
    model = Node
    rate_setting = "ENTITLEMENT_THROTTLE_RATE"

    def cost(self, request) -> int:
        if request.method != "POST":
            return 1
        # Parsed by the view's own parser (a malformed body is its 400); a
        # batch the view will refuse as too large costs its maximum.
        members = request.data.get("members")
        return min(len(members), MAX_BATCH) if isinstance(members, list) else 1
