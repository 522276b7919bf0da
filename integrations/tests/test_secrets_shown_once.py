"""Secrets issued in admin (integration, platform and node tokens, webhook
signing secrets) are shown once, from the server side: the "shown only now"
message lives in the session, never in a cookie, and the next page no longer
shows it."""

from __future__ import annotations

import base64
import binascii
import re
import zlib
from io import StringIO

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from compensation.services.nodes import node_create
from compensation.services.platforms import platform_create
from integrations.services.webhooks import endpoint_create
from members.models import User
from members.tests.factories import StaffFactory
from members.tests.mfa import staff_login

pytestmark = pytest.mark.django_db

SECRET = re.compile(r"\b(?:kmi|kmp|kmn|whsec)_[A-Za-z0-9_\-]{20,}")


def _readable(value: str) -> list[str]:
    """A cookie value and what it says once decoded: Django's signed values
    are ``base64(payload):signature`` parts, compressed when marked by a
    leading dot, so a secret in one need not appear literally."""
    texts = [value]
    for part in re.split(r"[:;=,\s\"]", value):
        compressed = part.startswith(".")
        part = part.lstrip(".")
        if len(part) < 8:
            continue
        try:
            raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
            if compressed:
                raw = zlib.decompress(raw)
        except (binascii.Error, ValueError, zlib.error):
            continue
        texts.append(raw.decode("utf-8", "replace"))
    return texts


class Recorder:
    """Drives the admin like a browser and keeps every cookie it was sent."""

    def __init__(self, client):
        self.client = client
        self.set_cookies: list[str] = []

    def _keep(self, response):
        self.set_cookies += [morsel.OutputString() for morsel in response.cookies.values()]
        return response

    def post_then_follow(self, url: str, data: dict) -> str:
        response = self._keep(self.client.post(url, data))
        assert response.status_code == 302, response.content[:500]
        page = self._keep(self.client.get(response["Location"]))
        assert page.status_code == 200
        again = self._keep(self.client.get(response["Location"]))
        self.reloaded = again.content.decode()
        return page.content.decode()

    def cookie_texts(self) -> list[str]:
        held = [morsel.value for morsel in self.client.cookies.values()]
        return [text for value in self.set_cookies + held for text in _readable(value)]


def _assert_shown_once_never_in_a_cookie(recorder: Recorder, page: str, prefix: str) -> None:
    secrets_shown = [s for s in SECRET.findall(page) if s.startswith(prefix)]
    assert len(secrets_shown) == 1, secrets_shown
    secret = secrets_shown[0]
    assert page.count(secret) == 1
    assert secret not in recorder.reloaded  # shown once: gone on the next page
    texts = recorder.cookie_texts()
    assert texts  # the session and CSRF cookies were sent and inspected
    for start in range(len(secret) - 7):
        piece = secret[start : start + 8]
        assert not any(piece in text for text in texts), f"{piece!r} travelled in a cookie"


@pytest.fixture
def operator(client, settings):
    settings.WEBHOOK_ALLOWED_PRIVATE_NETWORKS = ["127.0.0.1/32"]
    call_command("sync_staff_groups", stdout=StringIO())
    user = StaffFactory(email="ops@example.com")
    user.groups.add(Group.objects.get(name="Operators"))
    staff_login(client, User.objects.get(pk=user.pk))
    return Recorder(client)


def _action(model: str, action: str, pk: int) -> tuple[str, dict]:
    return reverse(f"admin:{model}_changelist"), {"action": action, "_selected_action": [pk]}


def test_a_new_integration_token_is_shown_once_and_never_travels_in_a_cookie(operator):
    page = operator.post_then_follow(
        reverse("admin:integrations_integrationtoken_add"),
        {"name": "warehouse", "description": "nightly load"},
    )
    _assert_shown_once_never_in_a_cookie(operator, page, "kmi_")


def test_a_new_webhook_secret_is_shown_once_and_never_travels_in_a_cookie(operator):
    page = operator.post_then_follow(
        reverse("admin:integrations_webhookendpoint_add"),
        {"url": "http://127.0.0.1:9/hook", "description": "billing", "event_types": []},
    )
    _assert_shown_once_never_in_a_cookie(operator, page, "whsec_")


def test_a_rolled_webhook_secret_is_shown_once_and_never_travels_in_a_cookie(operator):
    endpoint, _secret = endpoint_create(
        url="http://127.0.0.1:9/hook",
        description="",
        event_types=[],
        actor=None,
        now=timezone.now(),
    )
    page = operator.post_then_follow(
        *_action("integrations_webhookendpoint", "roll_secrets", endpoint.pk)
    )
    _assert_shown_once_never_in_a_cookie(operator, page, "whsec_")


def test_a_new_platform_token_is_shown_once_and_never_travels_in_a_cookie(operator):
    page = operator.post_then_follow(
        reverse("admin:compensation_platform_add"), {"name": "shop-billing"}
    )
    _assert_shown_once_never_in_a_cookie(operator, page, "kmp_")


def test_a_rotated_platform_token_is_shown_once_and_never_travels_in_a_cookie(operator):
    platform, _token = platform_create(name="shop-billing", now=timezone.now())
    page = operator.post_then_follow(
        *_action("compensation_platform", "rotate_tokens", platform.pk)
    )
    _assert_shown_once_never_in_a_cookie(operator, page, "kmp_")


def test_a_rotated_node_token_is_shown_once_and_never_travels_in_a_cookie(operator):
    node, _token = node_create(name="sh-node-01", now=timezone.now())
    page = operator.post_then_follow(*_action("compensation_node", "rotate_tokens", node.pk))
    _assert_shown_once_never_in_a_cookie(operator, page, "kmn_")
