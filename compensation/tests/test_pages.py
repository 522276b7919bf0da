from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.utils import timezone

from compensation.models import Incident, IncidentStatus
from compensation.services.credit import compensation_credit
from compensation.services.incidents import incident_declare
from members.tests.factories import MemberFactory

pytestmark = pytest.mark.django_db


# Deadlines and countdowns are computed from "now": freeze it, so a test
# never straddles a minute (or the end of an appeal window) mid-way.
FROZEN_AT = datetime(2026, 11, 20, 12, 0, 30, tzinfo=UTC)


@pytest.fixture(autouse=True)
def frozen_clock():
    with time_machine.travel(FROZEN_AT, tick=False):
        yield


def test_policy_page_is_public_and_shows_the_live_rules(client):
    from compensation.services.policy import policy_publish

    policy_publish(
        changes={"threshold_minutes": 7}, actor=None, note="longer grace", now=timezone.now()
    )
    page = client.get("/policy/").content.decode()
    assert "7" in page and "longer grace" in page and "v2" in page


def test_policy_calculator_uses_the_engine_rules(client):
    response = client.get("/policy/", {"minutes": 1900, "source": "disconnect", "already": 9000})
    quote = response.context["quote"]
    assert (quote.raw_minutes, quote.event_capped_minutes, quote.window_capped_minutes) == (
        1900,
        460,
        360,
    )
    assert quote.credited_minutes == 1080


@pytest.mark.parametrize(
    "query",
    [{"minutes": "abc"}, {"minutes": "-5"}, {"minutes": "99999999"}, {"source": "x", "minutes": 3}],
)
def test_policy_calculator_bad_input_is_a_form_error_not_a_500(client, query):
    response = client.get("/policy/", query)
    assert response.status_code == 200
    assert response.context["quote"] is None
    assert response.context["form"].errors


def test_status_page_lists_ongoing_and_past_incidents_but_not_withdrawn_ones(client):
    now = timezone.now()
    incident_declare(
        kind="maintenance",
        scope="all",
        node_ids=[],
        started_at=now - timedelta(hours=1),
        ended_at=None,
        ratio=None,
        title_zh="正在维护",
        title_en="Maintenance now",
        actor=None,
        now=now,
    )
    incident_declare(
        kind="outage",
        scope="all",
        node_ids=[],
        started_at=now - timedelta(days=1),
        ended_at=now - timedelta(days=1) + timedelta(minutes=20),
        ratio=None,
        title_zh="昨日故障",
        title_en="Yesterday's outage",
        actor=None,
        now=now,
    )
    hidden = Incident.objects.create(
        kind="node_silent",
        status=IncidentStatus.CANCELLED,
        started_at=now,
        title_zh="误报",
        title_en="false alarm",
    )
    page = client.get("/status/").content.decode()
    assert "正在维护" in page and "昨日故障" in page and "误报" not in page
    assert client.get(f"/status/{hidden.public_id}/").status_code == 404
    en = client.get("/status/", HTTP_COOKIE="django_language=en").content.decode()
    assert "Maintenance now" in en


def test_status_page_all_clear(client):
    assert 'data-testid="all-clear"' in client.get("/status/").content.decode()


def test_ledger_page_shows_the_head(client):
    member = MemberFactory().member
    now = timezone.now()
    claim = compensation_credit(
        member_id=member.pk,
        intervals=[(now - timedelta(hours=1), now - timedelta(minutes=50))],
        source_kind="disconnect",
        source_ref="x",
        idempotency_key="x",
        now=now,
    )
    page = client.get("/ledger/").content.decode()
    assert claim.entry.hash in page


def test_member_pages_show_only_their_own_rows(client):
    now = timezone.now()
    mine, theirs = MemberFactory(), MemberFactory()
    for user, key in ((mine, "a"), (theirs, "b")):
        compensation_credit(
            member_id=user.member.pk,
            intervals=[(now - timedelta(hours=2), now - timedelta(hours=1))],
            source_kind="disconnect",
            source_ref=key,
            idempotency_key=key,
            now=now,
        )
    client.force_login(mine)
    page = client.get("/my/compensation/")
    entries = list(page.context["page"].object_list)
    assert [(e.member_id, e.kind) for e in entries] == [
        (mine.member.pk, "credit"),
        (mine.member.pk, "opening"),
    ]
    api = client.get("/api/v1/me/compensations/").json()
    assert api["count"] == 2 and api["results"][0]["minutes"] == 60
    assert client.get("/api/v1/me/disconnects/").json()["count"] == 0


def test_member_pages_require_login(client):
    for url in ("/my/disconnects/", "/my/compensation/"):
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_staff_without_membership_get_404_on_member_pages(client, staff_user):
    client.force_login(staff_user)
    assert client.get("/my/disconnects/").status_code == 404
    assert client.get("/api/v1/me/").status_code == 404


def test_disconnect_list_queries_are_bounded(client, django_assert_max_num_queries, store):
    from compensation.models import Disconnect, Node

    user = MemberFactory()
    node = Node.objects.create(name="n1", token_hash="x" * 64, token_prefix="kmn_x")
    now = timezone.now()
    Disconnect.objects.bulk_create(
        Disconnect(
            member=user.member,
            node=node,
            session_id=f"s{i}",
            started_at=now - timedelta(hours=i + 1),
            ended_at=now - timedelta(hours=i + 1) + timedelta(minutes=10),
            status="closed",
            detected_at=now,
        )
        for i in range(25)
    )
    client.force_login(user)
    # A constant: session, user, profile, active-session tracking, policy,
    # the page's rows with their nodes and incidents, the unread count.
    with django_assert_max_num_queries(16):
        assert client.get("/my/disconnects/").status_code == 200
    with django_assert_max_num_queries(16):
        assert client.get("/api/v1/me/disconnects/").json()["count"] == 25
