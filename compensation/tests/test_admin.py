import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from compensation.models import Incident, IncidentStatus, LedgerEntry, Node, Policy
from compensation.services.credit import compensation_credit
from compensation.services.nodes import node_authenticate
from members.tests.factories import MemberFactory
from members.tests.mfa import staff_login

# Deadlines and "overdue" are read from the clock: freeze it (root conftest).
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen_clock")]


@pytest.fixture
def admin_client_(client, django_user_model):
    admin = django_user_model.objects.create_superuser(email="root@example.com", password="x")
    staff_login(client, admin)
    return client


def test_registering_a_node_in_admin_shows_its_token_once(admin_client_):
    response = admin_client_.post(
        reverse("admin:compensation_node_add"),
        {"name": "hk-node-02", "description": "HK"},
        follow=True,
    )
    assert response.status_code == 200
    messages = [str(m) for m in response.context["messages"]]
    token = next(re.search(r"kmn_[\w-]+", m).group(0) for m in messages if "kmn_" in m)
    assert node_authenticate(token=token).name == "hk-node-02"
    assert token not in Node.objects.get(name="hk-node-02").token_hash


def test_rotating_and_revoking_in_admin(admin_client_):
    from compensation.services.nodes import node_create

    node, old = node_create(name="n1", now=timezone.now())
    url = reverse("admin:compensation_node_changelist")
    response = admin_client_.post(
        url, {"action": "rotate_tokens", "_selected_action": [node.pk]}, follow=True
    )
    new = next(
        re.search(r"kmn_[\w-]+", str(m)).group(0)
        for m in response.context["messages"]
        if "kmn_" in str(m)
    )
    assert node_authenticate(token=old) is None
    assert node_authenticate(token=new) == node
    admin_client_.post(url, {"action": "revoke_tokens", "_selected_action": [node.pk]})
    assert node_authenticate(token=new) is None


def test_changing_the_policy_in_admin_publishes_a_new_version(admin_client_):
    add = reverse("admin:compensation_policy_add")
    form = admin_client_.get(add).context["adminform"].form
    data = {k: ("" if v is None else v) for k, v in form.initial.items()}
    data.update(
        threshold_minutes=8, change_note="more tolerance", lapsed_extends_from_credit_time="on"
    )
    response = admin_client_.post(add, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert list(Policy.objects.order_by("version").values_list("version", "threshold_minutes")) == [
        (1, 5),
        (2, 8),
    ]
    # Published versions cannot be edited or deleted.
    v1 = Policy.objects.get(version=1)
    assert (
        admin_client_.post(
            reverse("admin:compensation_policy_change", args=[v1.pk]), data
        ).status_code
        == 403
    )
    assert (
        admin_client_.post(reverse("admin:compensation_policy_delete", args=[v1.pk])).status_code
        == 403
    )


def test_declaring_a_past_maintenance_in_admin_compensates_everyone(
    admin_client_, django_capture_on_commit_callbacks
):
    from kamen_portal.celery import app

    member = MemberFactory().member
    before = member.expires_at
    start = timezone.now() - timedelta(hours=3)
    data = {
        "kind": "maintenance",
        "scope": "all",
        "started_at_0": timezone.localtime(start).strftime("%Y-%m-%d"),
        "started_at_1": timezone.localtime(start).strftime("%H:%M:%S"),
        "ended_at_0": timezone.localtime(start + timedelta(minutes=45)).strftime("%Y-%m-%d"),
        "ended_at_1": timezone.localtime(start + timedelta(minutes=45)).strftime("%H:%M:%S"),
        "ratio": "2.00",
        "title_zh": "机房维护",
        "title_en": "Data centre maintenance",
        "description_zh": "",
        "description_en": "",
    }
    app.conf.task_always_eager = True
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = admin_client_.post(reverse("admin:compensation_incident_add"), data)
    finally:
        app.conf.task_always_eager = False
    assert response.status_code == 302
    incident = Incident.objects.get()
    assert incident.status == IncidentStatus.CLOSED
    member.refresh_from_db()
    assert member.expires_at == before + timedelta(minutes=90)


def test_declaring_for_nodes_requires_choosing_nodes(admin_client_):
    response = admin_client_.post(
        reverse("admin:compensation_incident_add"),
        {
            "kind": "outage",
            "scope": "nodes",
            "started_at_0": "2026-11-20",
            "started_at_1": "10:00:00",
            "title_zh": "故障",
            "title_en": "Outage",
        },
    )
    assert response.status_code == 200
    assert "nodes" in response.context["adminform"].form.errors


def test_ledger_entries_cannot_be_changed_in_admin_and_reversal_needs_permission(
    client, django_user_model
):
    member = MemberFactory().member
    now = timezone.now()
    entry = compensation_credit(
        member_id=member.pk,
        intervals=[(now - timedelta(hours=1), now)],
        source_kind="disconnect",
        source_ref="x",
        idempotency_key="x",
        now=now,
    ).entry
    reviewer = django_user_model.objects.create_user(
        email="rev@example.com", password="x", is_staff=True
    )
    reviewer.user_permissions.add(Permission.objects.get(codename="view_ledgerentry"))
    staff_login(client, reviewer)
    assert (
        client.get(reverse("admin:compensation_ledgerentry_change", args=[entry.pk])).status_code
        == 200
    )
    assert (
        client.post(reverse("admin:compensation_ledgerentry_delete", args=[entry.pk])).status_code
        == 403
    )
    changelist = reverse("admin:compensation_ledgerentry_changelist")
    client.post(changelist, {"action": "reverse_entries", "_selected_action": [entry.pk]})
    assert (
        LedgerEntry.objects.exclude(kind="opening").count() == 1
    )  # no permission: nothing written

    reviewer.user_permissions.add(Permission.objects.get(codename="reverse_ledgerentry"))
    reviewer = django_user_model.objects.get(pk=reviewer.pk)
    staff_login(client, reviewer)
    client.post(changelist, {"action": "reverse_entries", "_selected_action": [entry.pk]})
    assert list(
        LedgerEntry.objects.exclude(kind="opening")
        .order_by("seq")
        .values_list("minutes", flat=True)
    ) == [60, -60]


def test_editing_an_open_declared_incident_goes_through_the_service_and_closes_it(
    admin_client_,
):
    from compensation.models import IncidentKind, IncidentScope
    from compensation.services.incidents import incident_declare

    now = timezone.now().replace(microsecond=0)
    incident = incident_declare(
        kind=IncidentKind.MAINTENANCE,
        scope=IncidentScope.ALL,
        node_ids=[],
        started_at=now - timedelta(minutes=45),
        ended_at=None,
        ratio=None,
        title_zh="维护",
        title_en="Maintenance",
        actor=None,
        now=now,
    )
    start = timezone.localtime(incident.started_at)
    end = timezone.localtime(now - timedelta(minutes=5))
    response = admin_client_.post(
        reverse("admin:compensation_incident_change", args=[incident.pk]),
        {
            "kind": IncidentKind.MAINTENANCE,
            "scope": IncidentScope.ALL,
            "started_at_0": start.strftime("%Y-%m-%d"),
            "started_at_1": start.strftime("%H:%M:%S"),
            "ended_at_0": end.strftime("%Y-%m-%d"),
            "ended_at_1": end.strftime("%H:%M:%S"),
            "title_zh": "维护（已结束）",
            "title_en": "Maintenance (over)",
        },
    )
    assert response.status_code == 302
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.CLOSED
    assert incident.ended_at == now - timedelta(minutes=5)
    assert incident.title_en == "Maintenance (over)"


def test_renaming_a_node_keeps_its_token(admin_client_):
    from compensation.services.nodes import node_create

    node, token = node_create(name="old-name", now=timezone.now())
    admin_client_.post(
        reverse("admin:compensation_node_change", args=[node.pk]),
        {"name": "new-name", "description": "moved"},
    )
    assert node_authenticate(token=token).name == "new-name"
