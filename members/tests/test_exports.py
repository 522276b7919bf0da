"""Member data export: complete, only one's own, CSV-safe, private links."""

import csv
import hashlib
import io
import json
import zipfile
from datetime import timedelta

import pytest
from django.utils import timezone

from compensation.services.credit import compensation_credit
from members.models import DataExport, ExportStatus, Notification, NotificationKind
from members.services.exports import ExportError, csv_cell, export_build, export_request
from members.tests.factories import MemberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def eager_celery():
    from kamen_portal.celery import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def _credit(member, key, minutes=12):
    now = timezone.now()
    return compensation_credit(
        member_id=member.pk,
        intervals=[
            (now - timedelta(hours=2), now - timedelta(hours=2) + timedelta(minutes=minutes))
        ],
        source_kind="disconnect",
        source_ref=key,
        idempotency_key=key,
        now=now,
    )


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("=SUM(A1)", "'=SUM(A1)"),
        ("+1", "'+1"),
        ("-2", "'-2"),
        ("@cmd", "'@cmd"),
        ("plain", "plain"),
        (None, ""),
    ],
)
def test_csv_cells_that_look_like_formulas_are_escaped(raw, safe):
    assert csv_cell(raw) == safe


def _build(client, user, django_capture_on_commit_callbacks):
    client.force_login(user)
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/account/export/")
    export = DataExport.objects.get(user=user)
    assert export.status == ExportStatus.READY
    return export


def test_export_contains_the_whole_record_and_only_mine(client, django_capture_on_commit_callbacks):
    me, other = MemberFactory(), MemberFactory()
    _credit(me.member, "mine")
    _credit(other.member, "theirs")
    Notification.objects.create(
        user=me,
        kind="credited",
        dedupe_key="evil",
        title='=HYPERLINK("http://x")',
        body="-1+1",
        created_at=timezone.now(),
    )
    export = _build(client, me, django_capture_on_commit_callbacks)
    notice = Notification.objects.get(user=me, kind=NotificationKind.EXPORT_READY)
    response = client.get(notice.url)
    assert response.status_code == 200
    data = b"".join(response.streaming_content)
    assert hashlib.sha256(data).hexdigest() == export.sha256
    archive = zipfile.ZipFile(io.BytesIO(data))
    names = set(archive.namelist())
    for required in (
        "profile.json",
        "disconnects.json",
        "disconnects.csv",
        "appeals.json",
        "appeals.csv",
        "ledger.json",
        "ledger.csv",
        "coupons.json",
        "coupons.csv",
        "notifications.json",
        "notifications.csv",
        "README.txt",
        "SHA256SUMS.txt",
    ):
        assert required in names
    ledger = [e for e in json.loads(archive.read("ledger.json")) if e["kind"] != "opening"]
    assert len(ledger) == 1 and ledger[0]["minutes"] == 12
    receipt = json.loads(archive.read(f"receipts/receipt-{ledger[0]['seq']}.json"))
    assert receipt["entry"]["member"] == me.member.member_no
    everything = b"".join(archive.read(n) for n in names).decode("utf-8", "replace")
    assert other.member.member_no not in everything and other.email not in everything
    sums = dict(
        line.split("  ")[::-1] for line in archive.read("SHA256SUMS.txt").decode().splitlines()
    )
    for name in names - {"SHA256SUMS.txt"}:
        assert hashlib.sha256(archive.read(name)).hexdigest() == sums[name]
    rows = list(csv.DictReader(io.StringIO(archive.read("notifications.csv").decode("utf-8-sig"))))
    evil = next(r for r in rows if "HYPERLINK" in r["title"])
    assert evil["title"].startswith("'=") and evil["body"] == "'-1+1"


def test_download_link_is_only_for_the_owner_and_expires(
    client, django_capture_on_commit_callbacks
):
    me = MemberFactory()
    _build(client, me, django_capture_on_commit_callbacks)
    url = Notification.objects.get(user=me, kind=NotificationKind.EXPORT_READY).url
    client.force_login(MemberFactory())
    assert client.get(url).status_code == 404  # another member
    client.logout()
    assert client.get(url).status_code == 302  # anonymous: to login
    client.force_login(me)
    assert client.get(url.split("?")[0] + "?t=forged").status_code == 404
    DataExport.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert client.get(url).status_code == 404


def test_at_most_three_exports_a_day():
    me = MemberFactory()
    now = timezone.now()
    for _ in range(3):
        export_request(user=me, now=now)
    with pytest.raises(ExportError):
        export_request(user=me, now=now)
    export_request(user=me, now=now + timedelta(days=1, seconds=1))


def test_building_twice_builds_once():
    me = MemberFactory()
    export = DataExport.objects.create(user=me, requested_at=timezone.now())
    assert export_build(export_id=export.pk, now=timezone.now()) is not None
    assert export_build(export_id=export.pk, now=timezone.now()) is None


def test_expired_exports_lose_their_files():
    from members.services.exports import exports_expire

    me = MemberFactory()
    export = DataExport.objects.create(user=me, requested_at=timezone.now())
    export = export_build(export_id=export.pk, now=timezone.now() - timedelta(days=2))
    path = export.file.path
    assert exports_expire(now=timezone.now()) == 1
    import os

    assert not os.path.exists(path)
    assert DataExport.objects.get().status == ExportStatus.EXPIRED


def test_a_lost_enqueue_is_swept_and_built_and_does_not_use_up_the_quota(
    django_capture_on_commit_callbacks,
):
    from members.services.exports import STUCK_PENDING, exports_sweep

    me = MemberFactory()
    asked = timezone.now()
    # The broker was down at commit: three exports stay pending.
    stuck = [DataExport.objects.create(user=me, requested_at=asked) for _ in range(3)]
    later = asked + STUCK_PENDING + timedelta(seconds=1)
    # Stuck exports are the portal's fault: the member may still ask.
    with django_capture_on_commit_callbacks(execute=False):
        export_request(user=me, now=later)
    assert exports_sweep(now=later) == 3
    assert {e.status for e in DataExport.objects.filter(pk__in=[s.pk for s in stuck])} == {
        ExportStatus.READY
    }
    assert exports_sweep(now=later) == 0  # nothing left to sweep


def test_an_export_whose_worker_died_mid_build_is_built_again():
    from members.services.exports import STUCK_BUILDING, exports_sweep

    me = MemberFactory()
    asked = timezone.now()
    export = DataExport.objects.create(user=me, requested_at=asked, status=ExportStatus.BUILDING)
    assert exports_sweep(now=asked + timedelta(minutes=1)) == 0  # still building, leave it
    assert exports_sweep(now=asked + STUCK_BUILDING + timedelta(seconds=1)) == 1
    export.refresh_from_db()
    assert export.status == ExportStatus.READY
