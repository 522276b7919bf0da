"""Bearer tokens of machines (service nodes, billing platforms, integrations):
one authentication class, one principal, one permission and one throttle,
each app naming only its token model, its look-up and its messages.

This logic used to be copied into three apps: a hole fixed in one copy
would have stayed open in the others.
"""

from __future__ import annotations

from django.conf import settings
from django.utils.functional import Promise
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission
from rest_framework.throttling import SimpleRateThrottle

from .cache import window_counts, window_uncount


class MachinePrincipal:
    """``request.user`` for a machine: authenticated, with no member or staff
    rights of any kind. ``request.auth`` is the token's owner (a Node, a
    Platform, an IntegrationToken)."""

    is_authenticated = True
    is_active = True
    is_staff = False
    is_superuser = False
    is_anonymous = False
    pk = None

    def __init__(self, realm: str, owner):
        self.realm = realm
        self.owner = owner

    def __str__(self) -> str:
        return f"{self.realm}:{getattr(self.owner, 'name', self.owner)}"


class BearerTokenAuthentication(BaseAuthentication):
    """``Authorization: Bearer <token>``. Subclasses set ``realm``, the three
    messages (whole translatable sentences naming their kind of token), and
    ``lookup``: the service that answers the token's owner, or None for a
    wrong or revoked token."""

    realm: str
    # The OpenAPI security scheme: its name and description.
    scheme_name: str
    scheme_description: str
    message_header: Promise
    message_malformed: Promise
    message_invalid: Promise

    # The app's service, keyword ``token``; set with ``staticmethod(...)``.
    lookup: staticmethod

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts:
            return None
        if parts[0].lower() != b"bearer" or len(parts) != 2:
            raise exceptions.AuthenticationFailed(self.message_header)
        try:
            token = parts[1].decode("ascii")
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed(self.message_malformed) from exc
        owner = self.lookup(token=token)
        if owner is None:
            raise exceptions.AuthenticationFailed(self.message_invalid)
        return MachinePrincipal(self.realm, owner), owner

    def authenticate_header(self, request) -> str:
        return f'Bearer realm="{self.realm}"'


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """Documents every machine token in the OpenAPI schema as HTTP bearer
    auth, under the scheme name and description its class declares."""

    target_class = BearerTokenAuthentication
    match_subclasses = True

    def __init__(self, target):
        super().__init__(target)
        self.name = target.scheme_name

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": self.target.scheme_description,
        }


def auth_is(model: type) -> type[BasePermission]:
    """A permission that holds only for a request authenticated as ``model``."""

    class AuthIs(BasePermission):
        def has_permission(self, request, view) -> bool:
            return isinstance(request.auth, model)

    AuthIs.__name__ = AuthIs.__qualname__ = f"Is{model.__name__}"
    return AuthIs


class PerMachineThrottle(SimpleRateThrottle):
    """Per token owner, not per address: nodes often sit behind one NAT.
    Subclasses set ``scope``, ``model`` and ``rate_setting``, the name of the
    setting read on every request.

    A sliding window estimated from two fixed-window counters (the previous
    window's count weighted by how much of it still overlaps the last
    ``duration`` seconds, plus this window's). DRF's own throttle keeps every
    request's timestamp in one cached list that is read, unpickled, pickled
    and written back on each request: at a node's 12,000 look-ups a minute
    that list is 12,000 floats per request. Here it is one round trip of
    three small Redis commands. Refused requests are not counted, as in
    DRF's, so a client that waits as told gets in.

    A request counts ``cost(request)`` events (1 unless a subclass says
    otherwise, e.g. one per member of a batch look-up)."""

    model: type
    rate_setting: str

    def cost(self, request) -> int:
        return 1

    def get_rate(self) -> str:
        return getattr(settings, self.rate_setting)

    def get_cache_key(self, request, view) -> str | None:
        if not isinstance(request.auth, self.model):
            return None
        return f"throttle:{self.scope}:{request.auth.pk}"

    def allow_request(self, request, view) -> bool:
        self.num_requests, self.duration = self.parse_rate(self.get_rate())
        key = self.get_cache_key(request, view)
        if key is None or self.num_requests is None:
            return True
        now = self.timer()
        window, into = divmod(now, self.duration)
        window = int(window)
        self.fraction = into / self.duration
        # A request bigger than the whole rate (a batch of 1,000 under
        # "600/minute") counts as the whole rate: admitted into an empty
        # window, so it waits its turn instead of being refused forever.
        self.amount = amount = min(max(1, self.cost(request)), self.num_requests)
        previous, current = window_counts(
            key, window=window, ttl=2 * self.duration + 1, amount=amount
        )
        self.previous, self.current = previous, current - amount
        if previous * (1 - self.fraction) + current <= self.num_requests:
            return True
        window_uncount(key, window=window, amount=amount)
        return False

    def wait(self) -> float:
        """Seconds until the same request would be admitted."""
        limit, duration, amount = self.num_requests, self.duration, self.amount
        if self.current + amount > limit:
            # Only once this window is the previous one, and has slid far
            # enough out: current * (1 - f) + amount <= limit.
            needed = max(0.0, 1 - (limit - amount) / self.current) if self.current else 0.0
            return (1 - self.fraction + needed) * duration
        # previous * (1 - f) + current + amount <= limit, later in this window.
        needed = 1 - (limit - amount - self.current) / self.previous if self.previous else 0.0
        return max(0.0, (needed - self.fraction) * duration)
