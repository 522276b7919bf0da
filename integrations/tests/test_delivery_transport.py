"""The sender connects to the addresses the target check approved, and only
to them: a name that answers the check with one address and the connection
with another (DNS rebinding) never reaches the second; TLS still names the
host (SNI, certificate, Host header) while the socket goes to the checked IP;
redirects are not followed."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import socketserver
import ssl
import threading
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.utils import timezone

from compensation.models import SourceKind
from compensation.services.credit import compensation_credit
from integrations.models import DeliveryAttempt, DeliveryStatus, EventType, WebhookDelivery
from integrations.services import webhooks
from integrations.services.webhooks import endpoint_create
from members.tests.factories import MemberFactory

from .receiver import Receiver

pytestmark = pytest.mark.django_db

PUBLIC = "93.184.215.14"
NAME = "hooks.kamen.test"
NOT_OPENINGS = [t for t in EventType.values if t != EventType.MEMBERSHIP_PURCHASED]


class ScriptedResolver:
    """socket.getaddrinfo for NAME: the n-th lookup answers ``answers[n]``
    (the last one repeated), as a rebinding DNS server with TTL 0 would;
    every other name (and every IP literal) is resolved for real."""

    def __init__(self, monkeypatch, answers: list[str]):
        self.answers = answers
        self.lookups = 0
        self.real = socket.getaddrinfo
        monkeypatch.setattr(socket, "getaddrinfo", self)

    def __call__(self, host, port, family=0, type=0, proto=0, flags=0):  # noqa: A002
        if isinstance(host, bytes):
            host = host.decode()
        if host.rstrip(".").lower() != NAME:
            return self.real(host, port, family, type, proto, flags)
        answer = self.answers[min(self.lookups, len(self.answers) - 1)]
        self.lookups += 1
        address = ipaddress.ip_address(answer)
        if address.version == 6:
            return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", (answer, port, 0, 0))]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answer, port))]


class Trap:
    """A listener on an address the webhook must never reach; it answers
    anything with an HTTP 200 carrying a "secret", as an internal service
    would, and counts every connection it accepts."""

    def __init__(self, host: str, port: int = 0):
        owner = self
        self.connections = 0

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                owner.connections += 1
                self.request.settimeout(2)
                try:
                    self.request.recv(65536)
                    self.request.sendall(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 14\r\n\r\nINTERNAL-SECRET"
                    )
                except OSError:
                    pass

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self.server = socketserver.ThreadingTCPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def trap():
    made = []

    def make(host, port=0):
        made.append(Trap(host, port))
        return made[-1]

    yield make
    for t in made:
        t.stop()


def _deliver(url: str, capture, receiver: Receiver | None = None) -> WebhookDelivery:
    """Register ``url`` (the receiver, if any, learns its secret), credit a
    member (one event) and let the delivery run on commit."""
    now = timezone.now()
    _endpoint, secret = endpoint_create(
        url=url, description="", event_types=NOT_OPENINGS, actor=None, now=now
    )
    if receiver is not None:
        receiver.secret = secret
    member = MemberFactory(membership__expires_at=now + timedelta(days=30)).member
    with capture(execute=True):
        compensation_credit(
            member_id=member.pk,
            intervals=[(now - timedelta(minutes=30), now)],
            source_kind=SourceKind.DISCONNECT,
            source_ref="k1",
            idempotency_key="k1",
            now=now,
        )
    return WebhookDelivery.objects.get()


def test_a_name_rebound_to_loopback_after_the_check_is_never_connected_to(
    settings, monkeypatch, trap, django_capture_on_commit_callbacks
):
    """The reproduction of the report: the name answers a public address to
    the checks (registration, then before the send) and 127.0.0.1 after; a
    listener on 127.0.0.1 must see no connection at all."""
    settings.WEBHOOK_ALLOWED_PRIVATE_NETWORKS = []
    loopback = trap("127.0.0.1")
    resolver = ScriptedResolver(monkeypatch, [PUBLIC, PUBLIC, "127.0.0.1"])
    connected = []

    def open_socket(address, port, timeout, socket_options):
        # The public host is "down": no test reaches the internet.
        connected.append((str(address), port))
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(webhooks, "_open_socket", open_socket)
    delivery = _deliver(f"https://{NAME}:{loopback.port}/hook", django_capture_on_commit_callbacks)

    assert loopback.connections == 0
    assert connected == [(PUBLIC, loopback.port)]
    # One lookup per check, none at connect time.
    assert resolver.lookups == 2
    assert delivery.status == DeliveryStatus.PENDING
    assert PUBLIC in delivery.last_error and "NewConnectionError" in delivery.last_error


def test_with_a_private_network_allowed_the_answer_comes_from_the_checked_address_only(
    settings, monkeypatch, trap, django_capture_on_commit_callbacks
):
    """WEBHOOK_ALLOWED_PRIVATE_NETWORKS allows plain http and shows the
    answer's first bytes in admin: a rebinding to another internal address
    would be a readable SSRF. Real sockets all the way: the receiver on the
    allowed 127.0.0.2 gets the event, the trap on 127.0.0.1 (same port)
    nothing, and its "secret" is not what the attempt log keeps."""
    settings.WEBHOOK_ALLOWED_PRIVATE_NETWORKS = ["127.0.0.2/32"]
    receiver = Receiver(host="127.0.0.2")
    receiver.start()
    try:
        internal = trap("127.0.0.1", receiver.port)
        ScriptedResolver(monkeypatch, ["127.0.0.2", "127.0.0.2", "127.0.0.1"])
        url = receiver.url_for(NAME)
        assert url.startswith("http://")
        delivery = _deliver(url, django_capture_on_commit_callbacks, receiver)
    finally:
        receiver.stop()
    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert internal.connections == 0
    [got] = receiver.received
    assert got.verified
    assert got.headers["Host"] == f"{NAME}:{receiver.port}"
    attempt = DeliveryAttempt.objects.get(delivery=delivery)
    assert attempt.response_excerpt == "ok"


def test_redirects_are_not_followed(loopback_allowed, trap, django_capture_on_commit_callbacks):
    inside = trap("127.0.0.1")
    receiver = Receiver(mode="redirect", location=f"http://127.0.0.1:{inside.port}/latest/")
    receiver.start()
    try:
        delivery = _deliver(receiver.url, django_capture_on_commit_callbacks)
    finally:
        receiver.stop()
    assert delivery.status == DeliveryStatus.PENDING
    assert delivery.last_status_code == 302
    assert delivery.last_error == "HTTP 302"
    assert inside.connections == 0


# --- TLS: the host name for SNI and the certificate, the checked IP for the socket.


def _tls_material(tmp_path, names: list[str], ips: list[str] = ()):
    """A CA (its PEM bundle written to tmp_path) and a server context whose
    certificate, signed by it, is valid for ``names`` (and ``ips``) only."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Kamen test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    alt = [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "receiver")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    chain = tmp_path / "server.pem"
    chain.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        + leaf.public_bytes(serialization.Encoding.PEM)
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(chain)
    server_names = []
    context.sni_callback = lambda _sock, name, _ctx: server_names.append(name)
    return bundle, context, server_names


@pytest.fixture
def tls_receiver(tmp_path, monkeypatch, settings, trap):
    """An HTTPS receiver on 127.0.0.1 trusted through a CA bundle (as
    SSL_CERT_FILE, which OpenSSL's default verify paths read), reached by
    NAME, which the checks see as 127.0.0.1 and any later lookup as
    127.0.0.3, where a trap listens on the same port."""
    settings.WEBHOOK_ALLOWED_PRIVATE_NETWORKS = ["127.0.0.1/32"]
    started = []

    def start(names, ips=()):
        bundle, context, server_names = _tls_material(tmp_path, names, ips)
        monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
        receiver = Receiver(ssl_context=context)
        receiver.start()
        started.append(receiver)
        elsewhere = trap("127.0.0.3", receiver.port)
        resolver = ScriptedResolver(monkeypatch, ["127.0.0.1", "127.0.0.1", "127.0.0.3"])
        return receiver, server_names, elsewhere, resolver

    yield start
    for r in started:
        r.stop()


def test_tls_names_the_host_while_the_socket_goes_to_the_checked_address(
    tls_receiver, django_capture_on_commit_callbacks
):
    receiver, server_names, elsewhere, resolver = tls_receiver([NAME])
    url = receiver.url_for(NAME)
    assert url.startswith("https://")
    delivery = _deliver(url, django_capture_on_commit_callbacks, receiver)
    assert delivery.status == DeliveryStatus.SUCCEEDED, delivery.last_error
    [got] = receiver.received
    assert got.verified
    assert server_names == [NAME]
    assert got.headers["Host"] == f"{NAME}:{receiver.port}"
    assert elsewhere.connections == 0
    assert resolver.lookups == 2


def test_the_certificate_is_checked_against_the_host_name_not_the_address(
    tls_receiver, django_capture_on_commit_callbacks
):
    """A certificate valid for 127.0.0.1 (the address connected to) but not
    for the name in the URL is refused: verification uses the host name."""
    receiver, server_names, elsewhere, _resolver = tls_receiver(["other.kamen.test"], ["127.0.0.1"])
    delivery = _deliver(receiver.url_for(NAME), django_capture_on_commit_callbacks)
    assert delivery.status == DeliveryStatus.PENDING
    assert "SSLError" in delivery.last_error
    assert "hostname" in delivery.last_error.lower() or "match" in delivery.last_error.lower()
    assert server_names == [NAME]
    assert receiver.received == []
    assert elsewhere.connections == 0


def test_an_untrusted_certificate_is_refused(
    tls_receiver, monkeypatch, tmp_path, django_capture_on_commit_callbacks
):
    receiver, _names, _elsewhere, _resolver = tls_receiver([NAME])
    # Trust another CA: the receiver's certificate chains to nothing trusted.
    (tmp_path / "other").mkdir()
    other_bundle, _ctx, _names = _tls_material(tmp_path / "other", [NAME])
    monkeypatch.setenv("SSL_CERT_FILE", str(other_bundle))
    delivery = _deliver(receiver.url_for(NAME), django_capture_on_commit_callbacks)
    assert delivery.status == DeliveryStatus.PENDING
    assert "CERTIFICATE_VERIFY_FAILED" in delivery.last_error
    assert receiver.received == []


def test_a_change_of_answer_gets_a_new_pool():
    """Keep-alive connections are per checked address set: a pool made for
    one answer is never used for another."""
    from integrations.targets import Target

    first = Target("https", NAME, 443, "/", (ipaddress.ip_address(PUBLIC),))
    second = Target("https", NAME, 443, "/", (ipaddress.ip_address("127.0.0.1"),))
    assert webhooks._pool_for(first) is webhooks._pool_for(first)
    assert webhooks._pool_for(first) is not webhooks._pool_for(second)
    assert webhooks._pool_for(second).conn_kw["pinned_addresses"] == second.addresses
