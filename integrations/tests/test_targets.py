"""The SSRF guard and the signature scheme (pure functions)."""

import ipaddress
import socket

import pytest

from integrations.signing import signature_header, verify
from integrations.targets import TargetRefused, check_target

PUBLIC = "93.184.215.14"


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("https://127.0.0.1/hook", "private_address"),
        ("https://localhost/hook", "private_address"),
        ("https://10.1.2.3/hook", "private_address"),
        ("https://192.168.0.10/hook", "private_address"),
        ("https://169.254.169.254/latest/meta-data", "private_address"),
        ("https://[::1]/hook", "private_address"),
        ("https://[::ffff:127.0.0.1]/hook", "private_address"),
        ("https://224.0.0.1/hook", "private_address"),
        ("https://0.0.0.0/hook", "private_address"),
        (f"http://{PUBLIC}/hook", "https_required"),
        ("ftp://example.com/x", "bad_url"),
        ("https://user:pw@example.com/x", "bad_url"),
        ("https://no-such-host.invalid/x", "unresolvable"),
    ],
)
def test_refused_targets_name_their_reason(settings, url, code):
    settings.WEBHOOK_ALLOWED_PRIVATE_NETWORKS = []
    with pytest.raises(TargetRefused) as refused:
        check_target(url)
    assert refused.value.code == code


# IPv6 spellings of IPv4 addresses that are not public: each reaches that
# IPv4 address through the kernel (mapped, compatible), a NAT64 translator,
# a 6to4 relay or a Teredo relay.
EMBEDDED_PRIVATE = [
    ("::ffff:127.0.0.1", "IPv4-mapped loopback"),
    ("::ffff:7f00:1", "IPv4-mapped loopback, hex"),
    ("::ffff:169.254.169.254", "IPv4-mapped metadata service"),
    ("::ffff:10.0.0.1", "IPv4-mapped private"),
    ("::127.0.0.1", "IPv4-compatible loopback"),
    ("::7f00:1", "IPv4-compatible loopback, hex"),
    ("::a9fe:a9fe", "IPv4-compatible metadata service"),
    ("::192.168.1.1", "IPv4-compatible private"),
    ("::0.0.0.2", "IPv4-compatible 'this network'"),
    ("64:ff9b::7f00:1", "NAT64 loopback"),
    ("64:ff9b::127.0.0.1", "NAT64 loopback, dotted"),
    ("64:ff9b::a9fe:a9fe", "NAT64 metadata service"),
    ("64:ff9b::10.1.2.3", "NAT64 private"),
    ("64:ff9b::100.64.0.1", "NAT64 carrier-grade NAT"),
    ("64:ff9b::e000:1", "NAT64 multicast"),
    ("64:ff9b:1::7f00:1", "local-use NAT64 prefix"),
    ("64:ff9b:1::5db8:d70e", "local-use NAT64 prefix, even of a public address"),
    ("2002:7f00:1::1", "6to4 of loopback"),
    ("2002:a9fe:a9fe::", "6to4 of the metadata service"),
    ("2002:c0a8:101::1", "6to4 of a private address"),
    ("2001:0:4136:e378:8000:63bf:80ff:fffe", "Teredo, client 127.0.0.1"),
    ("2001:0:a00:1::f5ff:fffe", "Teredo, server 10.0.0.1"),
    ("2001:0:5db8:d70e::a2ff:28f1", "Teredo between public addresses (Teredo is never a target)"),
]


@pytest.mark.parametrize(
    ("literal", "form"), EMBEDDED_PRIVATE, ids=[f for _a, f in EMBEDDED_PRIVATE]
)
def test_ipv6_spellings_of_non_public_ipv4_are_refused(settings, literal, form):
    settings.WEBHOOK_ALLOWED_PRIVATE_NETWORKS = []
    with pytest.raises(TargetRefused) as refused:
        check_target(f"https://[{literal}]:19050/hook")
    assert refused.value.code == "private_address"


@pytest.mark.parametrize(
    ("literal", "form"), EMBEDDED_PRIVATE, ids=[f for _a, f in EMBEDDED_PRIVATE]
)
def test_a_name_answering_such_a_spelling_is_refused(settings, monkeypatch, literal, form):
    settings.WEBHOOK_ALLOWED_PRIVATE_NETWORKS = []

    def fake(host, port, type=0):  # noqa: A002 - socket's name
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", (PUBLIC, port)),
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (literal, port, 0, 0)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    with pytest.raises(TargetRefused) as refused:
        check_target("https://hooks.example.com/x")
    assert refused.value.code == "private_address"


@pytest.mark.parametrize(
    "literal",
    [
        "2606:4700:4700::1111",  # plain public IPv6
        f"::ffff:{PUBLIC}",  # IPv4-mapped public
        "64:ff9b::5db8:d70e",  # NAT64 of a public address
    ],
)
def test_ipv6_spellings_of_public_addresses_are_accepted(settings, literal):
    settings.WEBHOOK_ALLOWED_PRIVATE_NETWORKS = []
    target = check_target(f"https://[{literal}]/hook")
    assert [str(a) for a in target.addresses] == [str(ipaddress.ip_address(literal))]


def test_the_check_returns_what_to_connect_to(settings, monkeypatch):
    settings.WEBHOOK_ALLOWED_PRIVATE_NETWORKS = []
    answers = [
        (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("2606:4700:4700::1111", 443, 0, 0)),
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", (PUBLIC, 443)),
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", (PUBLIC, 443)),
    ]
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, port, type=0: answers)  # noqa: A006
    target = check_target("https://Hooks.Example.com/in?x=1#frag")
    assert (target.scheme, target.host, target.port) == ("https", "hooks.example.com", 443)
    assert target.request_uri == "/in?x=1"
    # The resolver's order of preference, once each.
    assert [str(a) for a in target.addresses] == ["2606:4700:4700::1111", PUBLIC]


def test_a_public_https_target_is_accepted(settings):
    settings.WEBHOOK_ALLOWED_PRIVATE_NETWORKS = []
    check_target(f"https://{PUBLIC}:8443/hooks/kamen")


def test_a_host_that_resolves_to_a_private_address_is_refused(settings, monkeypatch):
    settings.WEBHOOK_ALLOWED_PRIVATE_NETWORKS = []

    def fake(host, port, type=0):  # noqa: A002 - socket's name
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", port))]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    with pytest.raises(TargetRefused) as refused:
        check_target("https://hooks.example.com/x")
    assert refused.value.code == "private_address"


def test_the_setting_allows_loopback_and_plain_http_for_its_networks_only(settings):
    settings.WEBHOOK_ALLOWED_PRIVATE_NETWORKS = ["127.0.0.1/32"]
    check_target("http://127.0.0.1:8080/hook")
    with pytest.raises(TargetRefused):
        check_target("http://10.0.0.1/hook")


def test_a_signature_verifies_only_for_its_body_secret_and_window():
    body = b'{"id":"e1"}'
    header = signature_header(secret="whsec_a", timestamp=1_000_000, body=body)
    assert verify(secret="whsec_a", header=header, body=body, now=1_000_100)
    assert not verify(secret="whsec_b", header=header, body=body, now=1_000_100)
    assert not verify(secret="whsec_a", header=header, body=body + b" ", now=1_000_100)
    assert not verify(secret="whsec_a", header=header, body=body, now=1_000_301)  # replayed late
    assert not verify(secret="whsec_a", header="garbage", body=body, now=1_000_000)
    rolled = header + ",v1=" + "0" * 64
    assert verify(secret="whsec_a", header=rolled, body=body, now=1_000_000)
