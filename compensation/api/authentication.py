from django.conf import settings
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission
from rest_framework.throttling import SimpleRateThrottle

from ..models import Node
from ..services.nodes import node_authenticate


class NodePrincipal:
    """What ``request.user`` is for a service node: authenticated, no staff
    or member rights of any kind."""

    is_authenticated = True
    is_active = True
    is_staff = False
    is_superuser = False
    is_anonymous = False

    def __init__(self, node: Node):
        self.node = node
        self.pk = None

    def __str__(self) -> str:
        return f"node:{self.node.name}"


class NodeTokenAuthentication(BaseAuthentication):
    keyword = b"bearer"

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts:
            return None
        if parts[0].lower() != self.keyword or len(parts) != 2:
            raise exceptions.AuthenticationFailed(
                _("Use the header: Authorization: Bearer <node token>.")
            )
        try:
            token = parts[1].decode("ascii")
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed(_("Invalid node token.")) from exc
        node = node_authenticate(token=token)
        if node is None:
            raise exceptions.AuthenticationFailed(_("Invalid or revoked node token."))
        return NodePrincipal(node), node

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="nodes"'


class IsNode(BasePermission):
    def has_permission(self, request, view) -> bool:
        return isinstance(request.auth, Node)


class NodeRateThrottle(SimpleRateThrottle):
    """Per node, not per IP: nodes often sit behind one NAT."""

    scope = "node"

    def get_rate(self) -> str:
        return settings.NODE_THROTTLE_RATE

    def get_cache_key(self, request, view) -> str | None:
        if not isinstance(request.auth, Node):
            return None
        return f"throttle:node:{request.auth.pk}"


class NodeTokenScheme(OpenApiAuthenticationExtension):
    """Documents the node token in the OpenAPI schema as HTTP bearer auth."""

    target_class = NodeTokenAuthentication
    name = "nodeToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "Service node token"}
