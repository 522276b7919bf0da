"""Node tokens (``Authorization: Bearer <node token>``) on the shared
machine-token classes of kamen_portal.machine_auth."""

from django.utils.translation import gettext_lazy as _

from kamen_portal.machine_auth import BearerTokenAuthentication, PerMachineThrottle, auth_is

from ..models import Node
from ..services.nodes import node_authenticate


class NodeTokenAuthentication(BearerTokenAuthentication):
    realm = "nodes"
    scheme_name = "nodeToken"
    scheme_description = "Service node token"
    lookup = staticmethod(node_authenticate)
    message_header = _("Use the header: Authorization: Bearer <node token>.")
    message_malformed = _("Invalid node token.")
    message_invalid = _("Invalid or revoked node token.")


IsNode = auth_is(Node)


class NodeRateThrottle(PerMachineThrottle):
    """Per node, not per IP: nodes often sit behind one NAT."""

    scope = "node"
    model = Node
    rate_setting = "NODE_THROTTLE_RATE"
