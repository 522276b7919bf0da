"""Member pages: filing, errors that keep the text, private evidence, bundle."""

import hashlib
import io
import uuid
import zipfile
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.utils import timezone

from appeals.models import Appeal, AppealStatus
from appeals.services import appeal_reject
from appeals.tests.factories import png_bytes, upload
from compensation.models import Disconnect, Node
from members.tests.factories import MemberFactory
from members.tests.mfa import staff_login

pytestmark = pytest.mark.django_db


# Deadlines and countdowns are computed from "now": freeze it, so a test
# never straddles a minute (or the end of an appeal window) mid-way.
FROZEN_AT = datetime(2026, 11, 20, 12, 0, 30, tzinfo=UTC)


@pytest.fixture(autouse=True)
def frozen_clock():
    with time_machine.travel(FROZEN_AT, tick=False):
        yield


def _local(dt):
    return timezone.localtime(dt).strftime("%Y-%m-%dT%H:%M")


@pytest.fixture
def member_client(client, member):
    client.force_login(member.user)
    return client


def _post_new(client, now, **overrides):
    data = {
        "submission_token": str(uuid.uuid4()),
        "claimed_start": _local(now - timedelta(minutes=90)),
        "claimed_end": _local(now - timedelta(minutes=60)),
        "description": "掉线了，重连不上。",
        "service": "game server",
        "screenshots": [upload()],
    }
    data.update(overrides)
    return client.post("/appeals/new/", data)


def test_member_files_an_appeal_and_lands_on_its_page(member_client, member, now):
    response = _post_new(member_client, now)
    appeal = Appeal.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/appeals/{appeal.public_id}/"
    page = member_client.get(response["Location"]).content.decode()
    assert appeal.short_id in page and "掉线了" in page


def test_a_rejected_file_says_why_and_keeps_the_text(member_client, now):
    response = _post_new(
        member_client, now, screenshots=[upload("evil.png", b"<svg onload=alert(1)>")]
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "evil.png" in page
    assert "掉线了，重连不上。" in page  # the description is still in the form
    assert not Appeal.objects.exists()


def test_missing_fields_are_form_errors_not_500s(member_client, now):
    response = member_client.post("/appeals/new/", {"description": ""})
    assert response.status_code == 200
    assert response.context["form"].errors
    response = _post_new(member_client, now, claimed_start="not a date")
    assert response.status_code == 200


def test_after_the_deadline_the_page_names_it(member_client, now):
    response = _post_new(
        member_client,
        now,
        claimed_start=_local(now - timedelta(days=3)),
        claimed_end=_local(now - timedelta(days=2)),
    )
    assert response.status_code == 200
    deadline = timezone.localtime(now - timedelta(days=2) + timedelta(hours=24)).strftime(
        "%Y-%m-%d %H:%M"
    )
    assert deadline in response.content.decode()
    assert not Appeal.objects.exists()


def test_filing_from_a_disconnect_is_prefilled_and_duplicate_points_to_the_first(
    member_client, member, now
):
    node = Node.objects.create(name="n1", token_hash="h" * 64, token_prefix="kmn_h")
    disconnect = Disconnect.objects.create(
        member=member,
        node=node,
        session_id="s",
        started_at=now - timedelta(minutes=50),
        ended_at=now - timedelta(minutes=30),
        status="closed",
        detected_at=now,
        outcome="capped",
    )
    page = member_client.get(f"/appeals/new/?disconnect={disconnect.public_id}")
    assert "n1" in page.content.decode()
    assert page.context["deadline"] == disconnect.ended_at + timedelta(hours=24)
    data = {
        "submission_token": str(uuid.uuid4()),
        "disconnect": str(disconnect.public_id),
        "description": "capped",
        "screenshots": [upload()],
    }
    first = member_client.post("/appeals/new/", data)
    appeal = Appeal.objects.get()
    assert (appeal.claimed_start, appeal.claimed_end, appeal.node) == (
        disconnect.started_at,
        disconnect.ended_at,
        node,
    )
    data["submission_token"] = str(uuid.uuid4())
    data["screenshots"] = [upload()]
    second = member_client.post("/appeals/new/", data)
    assert second["Location"] == first["Location"]
    assert Appeal.objects.count() == 1


def test_someone_elses_disconnect_cannot_be_appealed(member_client, now):
    other = MemberFactory().member
    node = Node.objects.create(name="n1", token_hash="h" * 64, token_prefix="kmn_h")
    disconnect = Disconnect.objects.create(
        member=other,
        node=node,
        session_id="s",
        started_at=now - timedelta(hours=1),
        ended_at=now,
        status="closed",
        detected_at=now,
    )
    assert member_client.get(f"/appeals/new/?disconnect={disconnect.public_id}").status_code == 404
    assert member_client.get("/appeals/new/?disconnect=not-a-uuid").status_code == 404


def test_evidence_is_served_only_to_its_owner_and_staff_with_safe_headers(
    client, file_appeal, reviewer
):
    appeal = file_appeal()
    item = appeal.evidence.get()
    url = f"/appeals/{appeal.public_id}/evidence/{item.public_id}/"
    assert client.get(url).status_code == 302  # anonymous: to login
    client.force_login(MemberFactory())
    assert client.get(url).status_code == 404  # another member
    assert client.get(f"/appeals/{appeal.public_id}/").status_code == 404
    client.force_login(appeal.member.user)
    response = client.get(url)
    assert response.status_code == 200
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cache-Control"] == "private, no-store"
    assert response["Content-Type"] == "image/png"
    assert "inline" in response["Content-Disposition"]
    body = b"".join(response.streaming_content)
    assert hashlib.sha256(body).hexdigest() == item.sha256
    assert client.get(url + "?thumb=1")["Content-Type"] == "image/jpeg"
    staff_login(client, reviewer)
    assert client.get(url).status_code == 200


def test_evidence_files_have_random_names_outside_any_public_url(file_appeal, settings):
    appeal = file_appeal(files=None)
    item = appeal.evidence.get()
    assert str(appeal.public_id) in item.file.name
    assert "shot" not in item.file.name
    assert item.file.path.startswith(str(settings.MEDIA_ROOT))
    with pytest.raises(ValueError):
        _ = item.file.url  # no public URL exists at all


def test_withdraw_and_escalate_through_the_pages(member_client, file_appeal, reviewer, now):
    appeal = file_appeal()
    assert member_client.post(f"/appeals/{appeal.public_id}/escalate/").status_code == 302
    assert Appeal.objects.get().status == AppealStatus.SUBMITTED  # not escalable yet
    member_client.post(f"/appeals/{appeal.public_id}/withdraw/")
    assert Appeal.objects.get().status == AppealStatus.WITHDRAWN
    assert member_client.get(f"/appeals/{appeal.public_id}/withdraw/").status_code == 405


def test_bundle_holds_everything_with_matching_hashes(member_client, file_appeal, reviewer, now):
    appeal = file_appeal()
    assert (
        member_client.get(f"/appeals/{appeal.public_id}/bundle.zip").status_code == 404
    )  # not escalated
    appeal_reject(appeal=appeal, staff=reviewer, reason="Not in our records.", now=now)
    member_client.post(f"/appeals/{appeal.public_id}/escalate/")
    response = member_client.get(f"/appeals/{appeal.public_id}/bundle.zip")
    assert response.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    names = set(archive.namelist())
    assert {
        "summary.html",
        "timeline.json",
        "appeal.json",
        "disconnects.json",
        "ledger.json",
        "policy.json",
        "SHA256SUMS.txt",
    } <= names
    evidence = [n for n in names if n.startswith("evidence/")]
    assert len(evidence) == 1
    sums = dict(
        line.split("  ")[::-1] for line in archive.read("SHA256SUMS.txt").decode().splitlines()
    )
    for name in names - {"SHA256SUMS.txt"}:
        assert hashlib.sha256(archive.read(name)).hexdigest() == sums[name]
    assert hashlib.sha256(archive.read(evidence[0])).hexdigest() == appeal.evidence.get().sha256
    summary = archive.read("summary.html").decode()
    assert appeal.member.member_no in summary and "Not in our records." in summary
    assert '"escalated"' in archive.read("timeline.json").decode()


def test_member_reply_with_a_bad_file_keeps_the_appeal_unchanged(member_client, file_appeal):
    appeal = file_appeal()
    response = member_client.post(
        f"/appeals/{appeal.public_id}/",
        {"message": "更多截图", "screenshots": [upload("x.png", png_bytes()[:40])]},
    )
    assert response.status_code == 200
    assert appeal.evidence.count() == 1
    assert not appeal.events.filter(kind="message").exists()


def test_oversized_bodies_are_refused_before_reading(member_client, file_appeal):
    from appeals.evidence import MAX_REQUEST_BYTES

    huge = str(MAX_REQUEST_BYTES + 1)
    response = member_client.post("/appeals/new/", {"description": "x"}, CONTENT_LENGTH=huge)
    assert response.status_code == 413
    assert "site-header" in response.content.decode()
    api = member_client.post("/api/v1/appeals/", {"description": "x"}, CONTENT_LENGTH=huge)
    assert api.status_code == 413 and api.json()["error"] == "body_too_large"


def test_another_member_gets_404_for_the_bundle(client, file_appeal, reviewer, now):
    appeal = file_appeal()
    appeal_reject(appeal=appeal, staff=reviewer, reason="no", now=now)
    client.force_login(MemberFactory())
    assert client.get(f"/appeals/{appeal.public_id}/bundle.zip").status_code == 404
    staff_login(client, reviewer)
    assert client.get(f"/appeals/{appeal.public_id}/bundle.zip").status_code == 200


def _credited_disconnect(member, now, *, start_ago=50, end_ago=30):
    from compensation.services.disconnects import disconnect_compensate

    node = Node.objects.get_or_create(
        name="n1", defaults={"token_hash": "h" * 64, "token_prefix": "kmn_h"}
    )[0]
    disconnect = Disconnect.objects.create(
        member=member,
        node=node,
        session_id="s",
        started_at=now - timedelta(minutes=start_ago),
        ended_at=now - timedelta(minutes=end_ago),
        status="closed",
        detected_at=now,
    )
    disconnect_compensate(disconnect_id=disconnect.pk, now=now)
    disconnect.refresh_from_db()
    return disconnect


def test_a_fully_credited_disconnect_is_refused_before_any_upload(member_client, member, now):
    from compensation.models import LedgerEntry

    disconnect = _credited_disconnect(member, now)
    page = member_client.get(f"/appeals/new/?disconnect={disconnect.public_id}")
    html = page.content.decode()
    assert page.context["check"].error.code == "already_compensated"
    assert 'data-code="already_compensated"' in html
    assert 'name="screenshots"' not in html  # nothing to upload
    entry = LedgerEntry.objects.exclude(kind="opening").get(member=member)
    assert f"/my/compensation/{entry.public_id}/" in html  # the receipt of the credit
    # Posting anyway gets the same refusal after the upload.
    response = member_client.post(
        "/appeals/new/",
        {
            "submission_token": str(uuid.uuid4()),
            "disconnect": str(disconnect.public_id),
            "description": "x",
            "screenshots": [upload()],
        },
    )
    assert response.context["form"].non_field_errors() == [page.context["check"].error.message]
    assert not Appeal.objects.exists()


def test_a_recorded_span_can_be_extended_and_shows_what_an_appeal_could_add(
    member_client, member, now
):
    disconnect = _credited_disconnect(member, now)
    start = _local(now - timedelta(minutes=70))
    page = member_client.get(
        "/appeals/new/",
        {
            "disconnect": str(disconnect.public_id),
            "claimed_start": start,
            "claimed_end": _local(disconnect.ended_at),
        },
    )
    check = page.context["check"]
    # 20 min 30 s before the recorded start (the clock stands at :30): rounded up.
    assert check.ok and check.could_add_minutes == 21
    assert (check.triage.claimed_minutes, check.triage.covered_minutes) == (41, 20)
    assert 'name="screenshots"' in page.content.decode()
    response = member_client.post(
        "/appeals/new/",
        {
            "submission_token": str(uuid.uuid4()),
            "disconnect": str(disconnect.public_id),
            "claimed_start": start,
            "claimed_end": _local(disconnect.ended_at),
            "description": "It started earlier.",
            "screenshots": [upload()],
        },
    )
    assert response.status_code == 302
    appeal = Appeal.objects.get()
    assert appeal.claimed_start == (now - timedelta(minutes=70)).replace(second=0)
    assert appeal.claimed_end == disconnect.ended_at
    assert appeal.deadline == disconnect.ended_at + timedelta(hours=24)
    # Shortening is refused with its own code.
    page = member_client.get(
        "/appeals/new/",
        {
            "disconnect": str(disconnect.public_id),
            "claimed_start": _local(now - timedelta(minutes=40)),
            "claimed_end": _local(disconnect.ended_at),
        },
    )
    assert page.context["check"].error.code == "span_shrinks"


def test_the_blank_form_shows_no_empty_deadline_box_and_checks_a_typed_span(member_client, now):
    html = member_client.get("/appeals/new/").content.decode()
    assert "deadline-preview" not in html and 'name="screenshots"' not in html
    page = member_client.get(
        "/appeals/new/",
        {
            "claimed_start": _local(now - timedelta(days=3)),
            "claimed_end": _local(now - timedelta(days=2)),
        },
    )
    assert page.context["check"].error.code == "window_closed"
    page = member_client.get(
        "/appeals/new/",
        {
            "claimed_start": _local(now - timedelta(hours=3)),
            "claimed_end": _local(now - timedelta(hours=2)),
        },
    )
    html = page.content.decode()
    assert page.context["check"].ok and 'name="screenshots"' in html
    # The deadline, relative and absolute (the clock stands at :30 seconds).
    assert '<span data-role="relative">剩余 21 小时 59 分</span>（截至 11-21 18:00）' in html


def test_disconnect_rows_show_the_appeal_and_stop_offering_a_second(member_client, member, now):
    disconnect = _credited_disconnect(member, now)
    rows = member_client.get("/my/disconnects/").content.decode()
    assert 'data-testid="appeal-link"' in rows
    member_client.post(
        "/appeals/new/",
        {
            "submission_token": str(uuid.uuid4()),
            "disconnect": str(disconnect.public_id),
            "claimed_start": _local(now - timedelta(minutes=70)),
            "description": "longer",
            "screenshots": [upload()],
        },
    )
    appeal = Appeal.objects.get()
    rows = member_client.get("/my/disconnects/").content.decode()
    assert 'data-testid="appeal-link"' not in rows
    assert f"/appeals/{appeal.public_id}/" in rows and appeal.short_id in rows


def test_the_form_help_texts_follow_the_reader_language():
    """Formatted when shown, not once at import in whatever language was on."""
    from django.utils import translation

    from appeals.forms import AppealForm

    for language, screenshots, logs in (
        ("en", "1 to 10 images", "Up to 5 plain-text files"),
        ("zh-hans", "1 至 10 张图片", "最多 5 个纯文本文件"),
    ):
        with translation.override(language):
            form = AppealForm()
            assert screenshots in str(form["screenshots"].help_text)
            assert logs in str(form["logs"].help_text)
