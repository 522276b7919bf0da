"""Where webhooks may be sent (SSRF guard).

A webhook URL names a host that the portal's workers will connect to: left
unchecked, an operator account (or a stolen one) could make the workers
reach the metadata service, the database or the admin of a neighbour. A
target is accepted only when every address its host resolves to is public
(not loopback, private, link-local, multicast, reserved or unspecified, and
not an IPv6 spelling of such an IPv4 address), checked when the endpoint is
registered and again before each delivery (DNS may change in between).
Networks in WEBHOOK_ALLOWED_PRIVATE_NETWORKS are allowed anyway, and only
they may use plain http.

The check returns the addresses it checked, and the sender connects to those
and only those (``integrations.services.webhooks``): a second lookup at
connect time would let a name answer a public address to the check and
127.0.0.1 to the connection (DNS rebinding).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.utils.translation import gettext as _

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# IPv6 forms that carry an IPv4 address in their low 32 bits, which a
# translator or the kernel turns back into that IPv4 destination:
# IPv4-compatible (::a.b.c.d, deprecated but still routed by some stacks) and
# the well-known NAT64 prefix (RFC 6052). IPv4-mapped, 6to4 and Teredo have
# their own accessors on IPv6Address.
_LOW32_EMBEDDING = (
    ipaddress.ip_network("::/96"),
    ipaddress.ip_network("64:ff9b::/96"),
)
# Never a public destination, whatever Python's is_global says on this
# interpreter (3.11.7 calls it global; later versions do not): the local-use
# NAT64 prefix (RFC 8215), whose IPv4 position depends on a local choice of
# prefix length, so it is refused whole rather than decoded.
_NON_GLOBAL_V6 = (ipaddress.ip_network("64:ff9b:1::/48"),)


class TargetRefused(ValueError):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Target:
    """A checked webhook target: connect to ``addresses`` (in this order)
    and to nothing else, naming ``host`` in SNI, the certificate check and
    the Host header."""

    scheme: str
    host: str
    port: int
    request_uri: str
    addresses: tuple[IPAddress, ...]


def _allowed_networks() -> list:
    return [
        ipaddress.ip_network(n, strict=False) for n in settings.WEBHOOK_ALLOWED_PRIVATE_NETWORKS
    ]


def _resolve(host: str, port: int) -> tuple[IPAddress, ...]:
    """Every address of ``host``, once, in the resolver's order of preference
    (RFC 6724), without duplicates."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise TargetRefused(
            "unresolvable", _("The host %(host)s cannot be resolved.") % {"host": host}
        ) from exc
    seen: dict[IPAddress, None] = {}
    for info in infos:
        # A link-local answer may carry a zone ("fe80::1%eth0"); it is refused
        # below either way.
        seen.setdefault(ipaddress.ip_address(info[4][0].split("%", 1)[0]), None)
    return tuple(seen)


def embedded_ipv4(address: IPAddress) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address stands for (mapped, compatible,
    NAT64, 6to4, Teredo server and client); empty for anything else."""
    if isinstance(address, ipaddress.IPv4Address):
        return []
    if address.ipv4_mapped is not None:
        return [address.ipv4_mapped]
    if any(address in n for n in _LOW32_EMBEDDING):
        return [ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)]
    if address.sixtofour is not None:
        return [address.sixtofour]
    if address.teredo is not None:
        return list(address.teredo)
    return []


def _is_public_v4(address: ipaddress.IPv4Address) -> bool:
    return address.is_global and not address.is_multicast


def is_public(address: IPAddress) -> bool:
    """A public unicast address, including every IPv4 address it embeds."""
    embedded = embedded_ipv4(address)
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            # ::ffff:a.b.c.d is a.b.c.d on the wire (Python calls the whole
            # ::ffff:0:0/96 private, so judge the IPv4 address alone).
            return _is_public_v4(address.ipv4_mapped)
        if any(address in n for n in _NON_GLOBAL_V6):
            return False
        if address in _LOW32_EMBEDDING[0] and int(address) <= 1:
            return False  # :: and ::1, not IPv4-compatible forms
    if not address.is_global or address.is_multicast:
        return False
    return all(_is_public_v4(v4) for v4 in embedded)


def check_target(url: str) -> Target:
    """The checked target of ``url``; raise TargetRefused unless it may
    receive webhooks now."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise TargetRefused("bad_url", _("Use an http(s) URL with a host name."))
    if parts.username or parts.password:
        raise TargetRefused("bad_url", _("Put no user name or password in the URL."))
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise TargetRefused("bad_url", _("The port of the URL is not valid.")) from exc
    try:
        # The name as it goes on the wire (SNI, Host, certificate check).
        host = parts.hostname.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise TargetRefused(
            "unresolvable", _("The host %(host)s cannot be resolved.") % {"host": parts.hostname}
        ) from exc
    allowed = _allowed_networks()
    addresses = _resolve(host, port)
    target = Target(
        scheme=parts.scheme,
        host=host,
        port=port,
        request_uri=(parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
        addresses=addresses,
    )
    if not addresses:
        raise TargetRefused(
            "unresolvable", _("The host %(host)s cannot be resolved.") % {"host": parts.hostname}
        )
    if all(any(a in n for n in allowed) for a in addresses):
        return target
    for address in addresses:
        if any(address in n for n in allowed):
            continue
        if not is_public(address):
            raise TargetRefused(
                "private_address",
                _(
                    "%(host)s resolves to %(address)s, a loopback, private, link-local or "
                    "multicast address: webhooks are sent to public addresses only."
                )
                % {"host": parts.hostname, "address": address},
            )
    if parts.scheme != "https":
        raise TargetRefused("https_required", _("Webhook URLs must use https."))
    return target
