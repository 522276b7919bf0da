"""The SSRF guard and the signature scheme (pure functions)."""

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
