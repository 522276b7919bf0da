import os
import subprocess
import sys
from io import StringIO

import pytest
from allauth.account.models import EmailAddress
from django.conf import settings
from django.core.management import call_command
from django.urls import reverse

from members.models import MemberProfile, User

pytestmark = pytest.mark.django_db


def test_seed_demo_is_idempotent_and_members_can_log_in(client):
    call_command("seed_demo", stdout=StringIO())
    first = {p.user.email: (p.member_no, p.expires_at) for p in MemberProfile.objects.all()}
    call_command("seed_demo", stdout=StringIO())
    second = {p.user.email: (p.member_no, p.expires_at) for p in MemberProfile.objects.all()}
    assert first == second
    assert set(first) == {"member1@example.com", "member2@example.com", "member3@example.com"}
    assert len({tier for tier in MemberProfile.objects.values_list("tier", flat=True)}) == 3
    assert User.objects.filter(is_staff=True).count() == 4
    assert EmailAddress.objects.filter(verified=True).count() == 7

    response = client.post(
        reverse("account_login"),
        {"login": "member1@example.com", "password": "kamen-demo-2026"},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == reverse("dashboard")
    assert response.context["membership_active"] is True


def test_seeded_staff_reach_admin(client):
    from members.tests.mfa import staff_login_through_allauth

    call_command("seed_demo", stdout=StringIO())
    reviewer = User.objects.get(email="reviewer@example.com")
    staff_login_through_allauth(client, reviewer, password="kamen-demo-2026")
    assert client.get(reverse("admin:index")).status_code == 200


def _run_manage(args: list[str], extra_env: dict) -> subprocess.CompletedProcess:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DEBUG", "SECRET_KEY", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    }
    env.update(extra_env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_settings_pass_check_deploy_without_warnings():
    result = _run_manage(
        ["check", "--deploy", "--fail-level", "WARNING"],
        {
            "DEBUG": "false",
            "SECRET_KEY": "k" * 20 + "-production-like-secret-with-enough-entropy-0123456789",
            "ALLOWED_HOSTS": "portal.example.com",
        },
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key():
    result = _run_manage(["check"], {"DEBUG": "false", "ALLOWED_HOSTS": "portal.example.com"})
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_a_misspelt_debug_flag_stops_the_process():
    result = _run_manage(["check"], {"DEBUG": "ture"})
    assert result.returncode != 0
    assert "DEBUG" in result.stderr
