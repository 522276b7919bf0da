import uuid
import zoneinfo
from datetime import timedelta

import pytest

from appeals.models import Appeal
from appeals.tests.factories import upload
from members.tests.factories import MemberFactory

# Deadlines and "overdue" are read from the clock: freeze it (root conftest).
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen_clock")]


@pytest.fixture
def api(client, member):
    client.force_login(member.user)
    return client


def _create(api, now, **overrides):
    data = {
        "claimed_start": (now - timedelta(minutes=90)).isoformat(),
        "claimed_end": (now - timedelta(minutes=60)).isoformat(),
        "description": "Dropped at the boss fight.",
        "screenshots": [upload(), upload("second.png")],
    }
    data.update(overrides)
    return api.post("/api/v1/appeals/", data)


def test_create_list_and_detail_with_timeline(api, now):
    response = _create(api, now, logs=[upload("c.log", b"timeout\n", "text/plain")])
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "submitted"
    assert len(body["evidence"]) == 3
    assert [e["kind"] for e in body["timeline"]] == ["submitted", "triaged"]
    listing = api.get("/api/v1/appeals/").json()
    assert listing["count"] == 1 and listing["results"][0]["id"] == body["id"]
    assert api.get(f"/api/v1/appeals/{body['id']}/").json()["id"] == body["id"]


def test_errors_are_clear_and_never_500(api, now):
    assert _create(api, now, screenshots=[]).json()["error"] == "no_screenshot"
    bad = _create(api, now, screenshots=[upload("x.png", b"GIF89a")])
    assert bad.status_code == 400 and bad.json()["file"] == "x.png"
    assert _create(api, now, claimed_start="garbage").status_code == 400
    assert (
        api.post("/api/v1/appeals/", {"description": "x", "screenshots": [upload()]}).json()[
            "error"
        ]
        == "invalid_span"
    )
    late = _create(
        api,
        now,
        claimed_start=(now - timedelta(days=3)).isoformat(),
        claimed_end=(now - timedelta(days=2)).isoformat(),
    )
    assert late.json()["error"] == "window_closed"
    assert api.post("/api/v1/appeals/", "{", content_type="application/json").status_code == 400


def test_duplicate_is_409_pointing_to_the_existing_appeal(api, now):
    first = _create(api, now).json()
    second = _create(api, now)
    assert second.status_code == 409
    assert second.json()["existing"] == first["id"]


def test_same_submission_token_twice_is_one_appeal(api, now):
    token = str(uuid.uuid4())
    a = _create(api, now, submission_token=token).json()
    b = _create(api, now, submission_token=token).json()
    assert a["id"] == b["id"] and Appeal.objects.count() == 1


def test_reply_and_withdraw(api, now):
    created = _create(api, now).json()
    reply = api.post(
        f"/api/v1/appeals/{created['id']}/replies/",
        {"message": "More detail", "screenshots": [upload()]},
    )
    assert reply.status_code == 200
    assert len(reply.json()["evidence"]) == 3
    withdrawn = api.post(f"/api/v1/appeals/{created['id']}/withdraw/")
    assert withdrawn.json()["status"] == "withdrawn"
    again = api.post(f"/api/v1/appeals/{created['id']}/withdraw/")
    assert again.status_code == 409


def test_other_members_get_404(client, api, now):
    created = _create(api, now).json()
    client.force_login(MemberFactory())
    assert client.get(f"/api/v1/appeals/{created['id']}/").status_code == 404
    assert client.post(f"/api/v1/appeals/{created['id']}/withdraw/").status_code == 404
    assert client.get("/api/v1/appeals/").json()["count"] == 0


def test_anonymous_is_refused(client, db):
    assert client.get("/api/v1/appeals/").status_code in (401, 403)


def test_schema_lists_the_appeal_endpoints(client, db):
    schema = client.get("/api/schema/").content.decode()
    for path in (
        "/api/v1/appeals/",
        "/api/v1/appeals/{public_id}/",
        "/api/v1/appeals/{public_id}/withdraw/",
    ):
        assert path in schema


def test_time_zone_edges_of_the_window(api, member, frozen_clock):
    """The deadline is an instant: a claim ending at 23:30 Shanghai time is
    open until 23:30 the next day, whatever zone the timestamps are written in.
    The clock is frozen, so the edges are exact to the second."""
    end = frozen_clock - timedelta(hours=24)
    in_shanghai = end.astimezone(zoneinfo.ZoneInfo("Asia/Shanghai"))
    response = api.post(
        "/api/v1/appeals/",
        {
            "claimed_start": (in_shanghai - timedelta(minutes=20)).isoformat(),
            "claimed_end": in_shanghai.isoformat(),
            "description": "x",
            "screenshots": [upload()],
        },
    )
    assert response.status_code == 201, response.json()

    la = (end - timedelta(seconds=1)).astimezone(zoneinfo.ZoneInfo("America/Los_Angeles"))
    response = api.post(
        "/api/v1/appeals/",
        {
            "claimed_start": (la - timedelta(hours=2)).isoformat(),
            "claimed_end": la.isoformat(),
            "description": "y",
            "screenshots": [upload()],
        },
    )
    assert response.status_code == 400
    assert response.json()["error"] == "window_closed"
