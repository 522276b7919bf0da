"""Where webhooks may be sent (SSRF guard).

A webhook URL names a host that the portal's workers will connect to: left
unchecked, an operator account (or a stolen one) could make the workers
reach the metadata service, the database or the admin of a neighbour. A
target is accepted only when every address its host resolves to is public
(not loopback, private, link-local, multicast, reserved or unspecified),
checked when the endpoint is registered and again before each delivery
(DNS may change in between). Networks in WEBHOOK_ALLOWED_PRIVATE_NETWORKS are
allowed anyway, and only they may use plain http.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings
from django.utils.translation import gettext as _


class TargetRefused(ValueError):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def _allowed_networks() -> list:
    return [
        ipaddress.ip_network(n, strict=False) for n in settings.WEBHOOK_ALLOWED_PRIVATE_NETWORKS
    ]


def _resolve(host: str, port: int) -> list:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise TargetRefused(
            "unresolvable", _("The host %(host)s cannot be resolved.") % {"host": host}
        ) from exc
    return sorted({ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos}, key=str)


def check_target(url: str) -> None:
    """Raise TargetRefused unless ``url`` may receive webhooks now."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise TargetRefused("bad_url", _("Use an http(s) URL with a host name."))
    if parts.username or parts.password:
        raise TargetRefused("bad_url", _("Put no user name or password in the URL."))
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise TargetRefused("bad_url", _("The port of the URL is not valid.")) from exc
    allowed = _allowed_networks()
    addresses = _resolve(parts.hostname, port)
    all_allowed = bool(addresses) and all(any(a in n for n in allowed) for a in addresses)
    if all_allowed:
        return
    for address in addresses:
        if any(address in n for n in allowed):
            continue
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        if not address.is_global or address.is_multicast:
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
