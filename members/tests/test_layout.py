"""The shared layout (templates/base.html): navigation a keyboard and a
screen reader can use, and the same public links for everybody."""

import re

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def _nav(html: str) -> str:
    return re.search(r'<nav class="site-nav".*?</nav>', html, re.S).group(0)


def test_the_menu_is_a_real_button_controlling_the_navigation(client):
    html = client.get(reverse("home")).content.decode()
    button = re.search(r'<button type="button" class="nav-toggle"[^>]*>', html).group(0)
    assert 'aria-expanded="false"' in button
    assert 'aria-controls="site-nav"' in button
    assert 'id="site-nav"' in html
    assert 'type="checkbox"' not in html.split("<main")[0]
    assert "js/nav.js" in html


def test_policy_status_and_help_stay_in_the_navigation_when_signed_in(member_client):
    nav = _nav(member_client.get(reverse("dashboard")).content.decode())
    for name in ("compensation:policy", "compensation:status", "help:index"):
        assert f'href="{reverse(name)}"' in nav


def test_the_language_switch_is_outside_the_collapsible_menu(client):
    html = client.get(reverse("home")).content.decode()
    assert 'class="lang-switch"' not in _nav(html)
    assert 'data-testid="lang-en"' in html
