"""The mediation bundle carries each entry's version 2 receipt and the log's
verifier key, so a mediator checks the entries with kamen-verify alone
(issue 23, item 5)."""

import io
import json
import zipfile
from datetime import timedelta

import pytest
from kamen_verify.__main__ import main as kamen_verify

from appeals.services import appeal_reject
from compensation.log_keys import log_verifier
from compensation.models import LedgerEntry
from compensation.services.credit import compensation_credit
from compensation.services.ledger_publish import ledger_publish_head


@pytest.fixture
def member_client(client, member):
    client.force_login(member.user)
    return client


def _credit(member, now, key, start_ago, end_ago):
    compensation_credit(
        member_id=member.pk,
        intervals=[(now - timedelta(minutes=start_ago), now - timedelta(minutes=end_ago))],
        source_kind="disconnect",
        source_ref=key,
        idempotency_key=key,
        now=now,
    )


def test_the_bundle_receipts_verify_with_kamen_verify_alone(
    member_client, member, file_appeal, reviewer, now, tmp_path, capsys
):
    appeal = file_appeal()
    _credit(member, now, "b-1", 88, 80)
    _credit(member, now, "b-2", 75, 70)
    ledger_publish_head(now=now)  # signs a checkpoint over both
    _credit(member, now, "b-3", 65, 62)  # newer than the checkpoint
    appeal_reject(appeal=appeal, staff=reviewer, reason="Not in our records.", now=now)
    escalated = member_client.post(f"/appeals/{appeal.public_id}/escalate/")
    assert escalated.status_code == 302, escalated.content.decode()[:3000]
    response = member_client.get(f"/appeals/{appeal.public_id}/bundle.zip")
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    archive.extractall(tmp_path)
    assert (tmp_path / "ledger-log-key.txt").read_text().strip() == log_verifier().vkey
    sums = (tmp_path / "SHA256SUMS.txt").read_text()
    assert "ledger-log-key.txt" in sums

    entries = list(
        LedgerEntry.objects.filter(member=member).exclude(kind="opening").order_by("seq")
    )
    assert len(entries) == 3
    key = f"@{tmp_path / 'ledger-log-key.txt'}"
    for entry in entries[:2]:
        path = tmp_path / "receipts" / f"{entry.seq}.json"
        assert f"receipts/{entry.seq}.json" in sums
        assert kamen_verify(["receipt", str(path), "--key", key]) == 0
        assert capsys.readouterr().out.startswith("OK")
    # The newest: no proof yet, and the summary says so.
    pending = tmp_path / "receipts" / f"{entries[2].seq}.json"
    assert json.loads(pending.read_text())["log"] is None
    assert kamen_verify(["receipt", str(pending), "--key", key]) == 1
    assert "not_in_log" in capsys.readouterr().err
    summary = (tmp_path / "summary.html").read_text()
    assert "kamen-verify receipt" in summary and f"#{entries[2].seq}" in summary

    # A mediator who is sent an edited receipt finds out.
    first = tmp_path / "receipts" / f"{entries[0].seq}.json"
    receipt = json.loads(first.read_text())
    receipt["entry"]["minutes"] += 60
    first.write_text(json.dumps(receipt))
    assert kamen_verify(["receipt", str(first), "--key", key]) == 1
