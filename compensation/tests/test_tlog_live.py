"""The running portal's transparency log, checked over HTTP by Go's own
golang.org/x/mod/sumdb/tlog and sumdb/note (tools/tlogverify): a member's
version 2 receipt, two signed checkpoints with the consistency proof
between them, and every tile and entry bundle; then an entry changed in the
database, which Go must refuse (issue 23, "Done when")."""

import base64
import json
import subprocess
import urllib.request
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from compensation.models import LedgerEntry
from compensation.services.credit import compensation_credit
from compensation.services.ledger_publish import ledger_publish_head
from compensation.tests.test_tlog_go import pytestmark as go_marks
from compensation.tests.test_tlog_go import tlogverify  # noqa: F401  (the built Go program)
from members.tests.factories import MemberFactory

pytestmark = [*go_marks, pytest.mark.django_db(transaction=True), pytest.mark.ledger_tampered]


def _credit(member, key, minute):
    now = timezone.now()
    start = now - timedelta(hours=2) + timedelta(minutes=minute)
    compensation_credit(
        member_id=member.pk,
        intervals=[(start, start + timedelta(minutes=5))],
        source_kind="disconnect",
        source_ref=key,
        idempotency_key=key,
        now=now,
    )


def _get(url, cookie=None) -> bytes:
    request = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (our live server)
        assert response.status == 200, url
        return response.read()


def _hashes(tmp_path, name, hashes) -> str:
    path = tmp_path / name
    path.write_text("".join(h + "\n" for h in hashes))
    return str(path)


def test_go_verifies_what_the_running_portal_serves_and_refuses_a_changed_entry(
    live_server,
    client,
    tlogverify,  # noqa: F811
    tmp_path,
):
    member = MemberFactory().member
    others = [MemberFactory().member for _ in range(3)]
    _credit(member, "live-mine", 0)
    for i in range(300):  # past one full tile of 256 leaves
        _credit(others[i % 3], f"live-{i}", i % 100 + 10)
    ledger_publish_head(now=timezone.now())
    client.force_login(member.user)
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    entry = LedgerEntry.objects.filter(member=member, source_ref="live-mine").get()
    receipt_url = f"{live_server.url}/my/compensation/{entry.public_id}/receipt.json"
    old_receipt = json.loads(_get(receipt_url, cookie))
    old_checkpoint = old_receipt["log"]["checkpoint"]
    for i in range(20):
        _credit(others[i % 3], f"live-late-{i}", i + 120)
    ledger_publish_head(now=timezone.now() + timedelta(minutes=1))

    base = f"{live_server.url}/ledger/log"
    (tmp_path / "key").write_bytes(_get(f"{base}/key"))
    (tmp_path / "checkpoint").write_bytes(_get(f"{base}/checkpoint"))
    (tmp_path / "old").write_text(old_checkpoint)
    new_size = int((tmp_path / "checkpoint").read_text().split("\n")[1])
    old_size = int(old_checkpoint.split("\n")[1])
    assert new_size > old_size
    consistency = json.loads(_get(f"{base}/consistency?old={old_size}&new={new_size}"))
    receipt = json.loads(_get(receipt_url, cookie))
    assert receipt["log"]["checkpoint"] == (tmp_path / "checkpoint").read_text()
    (tmp_path / "leaf").write_bytes(base64.b64decode(receipt["log"]["leaf_data"]))

    def go(*extra):
        return subprocess.run(
            [
                str(tlogverify),
                "-key",
                f"@{tmp_path / 'key'}",
                "-checkpoint",
                str(tmp_path / "checkpoint"),
                *extra,
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )

    inclusion = [
        "-leaf",
        str(tmp_path / "leaf"),
        "-index",
        str(receipt["log"]["index"]),
        "-proof",
        _hashes(tmp_path, "proof", receipt["log"]["proof"]),
    ]
    result = go(
        *inclusion,
        "-old-checkpoint",
        str(tmp_path / "old"),
        "-consistency",
        _hashes(tmp_path, "consistency", consistency["proof"]),
        "-tiles",
        base,
        "-entries",
    )
    assert result.returncode == 0, result.stderr
    for line in (
        "OK inclusion",
        f"OK consistency {old_size} -> {new_size}",
        "OK tiles",
        "OK entries",
    ):
        assert line in result.stdout, result.stdout

    # Someone with database access changes the member's entry.
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(
            "UPDATE compensation_ledgerentry SET minutes = minutes + 600 WHERE id = %s", [entry.pk]
        )
    changed = json.loads(_get(receipt_url, cookie))
    (tmp_path / "leaf").write_bytes(base64.b64decode(changed["log"]["leaf_data"]))
    refused = go(*inclusion)
    assert refused.returncode == 1 and "inclusion" in refused.stderr, refused.stdout
    mirrored = go("-tiles", base, "-entries")
    assert mirrored.returncode == 1 and "entries give root" in mirrored.stderr, mirrored.stdout
