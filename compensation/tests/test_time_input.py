"""Issue 20, item 1: time input is bounded where it enters. Each reproduction
of the issue is a test here and answers a 4xx (or a named rejected item),
never a 500; rows stored before the bound are made readable by migration
0013. The parser's own properties: kamen_portal/tests/test_timeinput.py."""

import importlib
import json
from datetime import UTC, datetime, timedelta

import pytest
from django import forms
from django.apps import apps
from django.contrib import admin
from django.db import DataError, OperationalError, connection, transaction
from django.test import RequestFactory, override_settings
from django.urls import reverse
from django.utils import timezone

from appeals.forms import SpanForm
from appeals.tests.factories import upload
from compensation.models import Incident, LedgerEntry, LedgerKind, MembershipEvent
from compensation.services import platform_events
from compensation.services.nodes import node_create
from compensation.services.platforms import platform_create
from kamen_portal.timeinput import BoundedSplitDateTimeField
from members.models import MemberProfile
from members.tests.factories import MemberFactory, StaffFactory
from members.tests.mfa import staff_login

from .test_alertmanager import _alert, _post, node_with_member, receiver  # noqa: F401

pytestmark = pytest.mark.django_db
EVENTS = "/api/v1/memberships/events/"
HEARTBEATS = "/api/v1/heartbeats/"
BC = "0001-01-01T00:00:00+14:00"
clamp_migration = importlib.import_module("compensation.migrations.0013_clamp_out_of_range_times")


@pytest.fixture
def platform():
    return platform_create(name="shop-billing", now=timezone.now())


def post_events(client, token, events):
    response = client.post(
        EVENTS,
        json.dumps({"events": events}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert response.status_code == 200, response.content
    return response.json()["results"]


def event(key, kind, member_no, *, at=None, **extra):
    at = at or timezone.now().isoformat()
    return {"key": key, "type": kind, "member": member_no, "occurred_at": at, **extra}


# --- POST /api/v1/memberships/events/ ---------------------------------------------


@pytest.mark.postgres
@pytest.mark.parametrize(
    "occurred_at",
    [
        BC,  # stored as a BC timestamp psycopg could not read back
        "2026-12-07T10:00:00+23:59",  # InvalidTimeZoneDisplacementValue
        "2026-12-07T10:00:00+16:00",
        "9999-12-31T23:59:59-14:00",  # past year 9999 in UTC
        "2101-01-01T00:00:00Z",
        "1999-12-31T23:59:59Z",
    ],
)
def test_an_event_time_out_of_bounds_is_rejected_invalid_naming_the_field(
    client, platform, occurred_at
):
    _p, token = platform
    member = MemberFactory(membership__expires_at=None).member
    results = post_events(
        client, token, [event("order-x", "purchase", member.member_no, at=occurred_at, days=30)]
    )
    assert results[0]["status"] == "rejected" and results[0]["error"] == "invalid"
    assert results[0]["detail"].startswith("occurred_at: ")
    assert not MembershipEvent.objects.exists()
    # The key was not consumed: the fixed event applies.
    fixed = post_events(client, token, [event("order-x", "purchase", member.member_no, days=30)])
    assert fixed[0]["status"] == "applied"


@pytest.mark.postgres
def test_a_batch_with_a_bad_offset_between_good_events_reports_each(client, platform):
    _p, token = platform
    member = MemberFactory(membership__expires_at=None).member
    batch = [
        event("good-1", "purchase", member.member_no, days=1),
        event("bad", "purchase", member.member_no, at="2026-12-07T10:00:00+16:00", days=1),
        event("good-2", "purchase", member.member_no, days=2),
    ]
    results = post_events(client, token, batch)
    assert [(r["index"], r["key"], r["status"]) for r in results] == [
        (0, "good-1", "applied"),
        (1, "bad", "rejected"),
        (2, "good-2", "applied"),
    ]
    assert results[1]["error"] == "invalid"
    assert set(MembershipEvent.objects.values_list("key", flat=True)) == {"good-1", "good-2"}
    assert LedgerEntry.objects.filter(member=member, kind=LedgerKind.PURCHASE).count() == 2


@pytest.mark.postgres
@pytest.mark.parametrize("unknown", ["create", "reject"])
def test_an_event_for_a_staff_accounts_email_is_rejected_with_its_own_code(
    client, platform, unknown
):
    _p, token = platform
    staff = StaffFactory()
    item = {
        "key": "order-staff",
        "type": "purchase",
        "email": staff.email.upper(),
        "occurred_at": timezone.now().isoformat(),
        "days": 30,
    }
    with override_settings(MEMBERSHIP_EVENTS_UNKNOWN_MEMBERS=unknown):
        results = post_events(client, token, [item])
    assert results[0]["status"] == "rejected" and results[0]["error"] == "staff_account"
    assert not MemberProfile.objects.filter(user=staff).exists()
    assert not MembershipEvent.objects.exists()


@pytest.mark.parametrize(
    ("error", "code"), [(DataError, "invalid"), (OperationalError, "unavailable")]
)
def test_an_item_the_database_refuses_is_reported_and_the_batch_still_counts(
    client, platform, monkeypatch, error, code
):
    """Whatever slips past validation, the batch never 500s: the refused
    item's transaction is rolled back and named, and the items committed
    around it are reported."""
    _p, token = platform
    member = MemberFactory(membership__expires_at=None).member
    real = platform_events.membership_add_time

    def refuse_some(**kwargs):
        if kwargs["note"].endswith(": refused"):
            raise error("the database says no")
        return real(**kwargs)

    monkeypatch.setattr(platform_events, "membership_add_time", refuse_some)
    batch = [
        event("first", "purchase", member.member_no, days=1),
        event("refused", "purchase", member.member_no, days=1),
        event("last", "purchase", member.member_no, days=1),
    ]
    results = post_events(client, token, batch)
    assert [r["status"] for r in results] == ["applied", "rejected", "applied"]
    assert results[1]["error"] == code and results[1]["key"] == "refused"
    assert set(MembershipEvent.objects.values_list("key", flat=True)) == {"first", "last"}


@pytest.mark.postgres
def test_a_bc_row_stored_before_the_bound_is_readable_after_the_migration(client, platform):
    """The whole reproduction: the BC row made the replay, later tier events,
    refunds and the admin list 500; migration 0013 clamps it."""
    _p, token = platform
    member = MemberFactory(membership__expires_at=None).member
    bad = event("order-bc", "purchase", member.member_no, at=BC, days=30, tier="gold")
    stored = post_events(
        client, token, [{**bad, "occurred_at": timezone.now().isoformat(), "key": "order-bc"}]
    )
    assert stored[0]["status"] == "applied"
    with connection.cursor() as cursor:  # what the old code stored
        cursor.execute(
            "UPDATE compensation_membershipevent SET occurred_at = %s::timestamptz WHERE key = %s",
            ["0001-01-01 00:00:00+14", "order-bc"],
        )
    with pytest.raises(DataError), transaction.atomic():
        list(MembershipEvent.objects.values_list("occurred_at", flat=True))

    assert clamp_migration.clamp_times(apps) == 1

    row = MembershipEvent.objects.get(key="order-bc")
    assert row.occurred_at == datetime(2000, 1, 1, tzinfo=UTC)
    replay = post_events(client, token, [bad])[0]
    assert (replay["status"], replay["error"]) == ("rejected", "invalid")
    tier = post_events(
        client, token, [event("tier-1", "tier_change", member.member_no, tier="silver")]
    )
    assert tier[0]["status"] == "applied" and tier[0]["tier"] == "silver"
    refund = post_events(
        client, token, [event("refund-bc", "refund", member.member_no, refunds="order-bc")]
    )
    assert refund[0]["status"] == "applied"
    superuser = type(member.user).objects.create_superuser(email="root@example.com", password="x")
    staff_login(client, superuser)
    listing = client.get(reverse("admin:compensation_membershipevent_changelist"))
    assert listing.status_code == 200
    assert "order-bc" in listing.content.decode()


@pytest.mark.postgres
def test_the_migration_clamps_incidents_keeping_their_end_after_their_start():
    node, _token = node_create(name="n-1", now=timezone.now())
    incident = Incident.objects.create(
        kind="outage",
        started_at=timezone.now() - timedelta(hours=1),
        ended_at=timezone.now(),
        title_zh="故障",
        title_en="Outage",
    )
    incident.nodes.add(node)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE compensation_incident SET started_at = '0001-01-01 00:00:00+14', "
            "ended_at = '0001-01-01 01:00:00+14' WHERE id = %s",
            [incident.pk],
        )
    assert clamp_migration.clamp_times(apps) == 2
    incident.refresh_from_db()
    assert incident.started_at == datetime(2000, 1, 1, tzinfo=UTC)
    assert incident.ended_at == incident.started_at + timedelta(seconds=1)
    assert clamp_migration.clamp_times(apps) == 0  # times in bounds are never touched


# --- POST /api/v1/heartbeats/ -----------------------------------------------------


@pytest.mark.postgres
def test_heartbeat_times_out_of_bounds_are_rejected_and_the_others_accepted(client, store):
    _node, token = node_create(name="hb-node", now=timezone.now())
    member = MemberFactory().member
    good = (timezone.now() - timedelta(minutes=1)).isoformat()
    items = [
        {"member": member.member_no, "session": "s1", "at": at}
        for at in (good, BC, "2026-12-07T10:00:00+16:00", "2026-12-07T10:00:00+23:59", "x")
    ]
    response = client.post(
        HEARTBEATS,
        json.dumps({"heartbeats": items}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert response.status_code == 202
    body = response.json()
    assert body["accepted"] == 1
    assert [(r["index"], r["code"]) for r in body["rejected"]] == [
        (1, "invalid_time"),
        (2, "invalid_time"),
        (3, "invalid_time"),
        (4, "invalid_time"),
    ]
    assert all(r["error"].startswith('"at": ') for r in body["rejected"])


# --- Alertmanager, appeals, forms, admin ----------------------------------------


@pytest.mark.postgres
@pytest.mark.usefixtures("receiver", "node_with_member")
def test_alert_times_out_of_bounds_are_ignored_as_invalid(
    client, django_capture_on_commit_callbacks
):
    alerts = [
        {**_alert(fingerprint="a1"), "startsAt": "2026-11-20T10:00:00+16:00"},
        {**_alert("resolved", fingerprint="a2"), "endsAt": "2026-11-20T10:00:00+23:59"},
        {**_alert(fingerprint="a3"), "startsAt": BC},
        _alert(fingerprint="ok"),  # endsAt is Go's zero time, as Alertmanager sends it
    ]
    response = _post(client, django_capture_on_commit_callbacks, alerts)
    assert response.status_code == 200
    ignored = response.json()["ignored"]
    assert [(i["index"], i["error"]) for i in ignored] == [
        (0, "invalid"),
        (1, "invalid"),
        (2, "invalid"),
    ]
    assert ignored[0]["detail"].startswith("startsAt: ")
    assert ignored[1]["detail"].startswith("endsAt: ")
    assert response.json()["opened"] == 1


@pytest.mark.postgres
@pytest.mark.usefixtures("frozen_clock")
def test_an_appeal_span_out_of_bounds_is_400_invalid_naming_the_field(member_client):
    response = member_client.post(
        "/api/v1/appeals/",
        {
            "claimed_start": BC,
            "claimed_end": "2026-11-20T11:00:00+08:00",
            "description": "Dropped.",
            "screenshots": [upload()],
        },
    )
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid" and "claimed_start" in body["fields"]
    assert body["detail"].startswith("claimed_start: ")


def test_the_appeal_span_form_refuses_a_year_out_of_bounds():
    form = SpanForm(data={"claimed_start": "0001-01-01T00:00", "claimed_end": ""})
    assert not form.is_valid()
    assert form.errors.as_data()["claimed_start"][0].code == "invalid"


def test_every_admin_date_time_field_is_bounded(django_user_model):
    """Walks every registered admin (ours and the libraries') and its inlines:
    a date-time field that is not BoundedSplitDateTimeField fails."""
    superuser = django_user_model(email="walk@example.com", is_staff=True, is_superuser=True)
    request = RequestFactory().get("/admin/")
    request.user = superuser
    seen = 0
    for model, model_admin in admin.site._registry.items():
        form_classes = [model_admin.get_form(request)]
        form_classes += [
            i.get_formset(request).form for i in model_admin.get_inline_instances(request)
        ]
        for form_class in form_classes:
            for name, field in form_class.base_fields.items():
                if isinstance(field, forms.DateTimeField | forms.SplitDateTimeField):
                    assert isinstance(field, BoundedSplitDateTimeField), (model, name)
                    seen += 1
    assert seen > 10


@pytest.mark.postgres
def test_declaring_an_incident_in_year_one_in_admin_is_a_form_error(client, django_user_model):
    superuser = django_user_model.objects.create_superuser(email="root@example.com", password="x")
    staff_login(client, superuser)
    response = client.post(
        reverse("admin:compensation_incident_add"),
        {
            "kind": "maintenance",
            "scope": "all",
            "started_at_0": "0001-01-01",
            "started_at_1": "00:00:00",
            "ended_at_0": "0001-01-01",
            "ended_at_1": "01:00:00",
            "ratio": "1.00",
            "title_zh": "维护",
            "title_en": "Maintenance",
        },
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors.as_data()
    assert errors["started_at"][0].code == "invalid"
    assert not Incident.objects.exists()


def test_the_schema_documents_the_bounds_and_the_staff_code(client):
    schema = client.get("/api/schema/?format=json").json()
    components = schema["components"]["schemas"]
    assert "±14:00" in components["HeartbeatItemRequest"]["properties"]["at"]["description"]
    assert "staff_account" in components["EventResult"]["properties"]["error"]["description"]
    assert "Year 2000-2100" in json.dumps(components["EventBatchRequest"])
