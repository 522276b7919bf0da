"""The package checks what the portal really serves: a member's receipt from
/my/compensation/<id>/receipt.json, and as a witness the checkpoints and
consistency proofs of /ledger/log/, fetched through the test client."""

from datetime import timedelta

import pytest
from django.db import connection
from kamen_verify.receipt import parse_receipt

from compensation import tlog
from compensation.models import LedgerEntry
from compensation.services.credit import compensation_credit
from compensation.services.ledger_publish import ledger_publish_head
from compensation.tests.conftest import T0
from kamen_verify import VerifyError, Witness, check_receipt, parse_verifier_key
from members.tests.factories import MemberFactory

pytestmark = pytest.mark.django_db
NOW = T0 + timedelta(hours=3)


def _credits(members, n, start=0):
    for i in range(start, start + n):
        compensation_credit(
            member_id=members[i % len(members)].pk,
            intervals=[(T0 + timedelta(minutes=i * 20), T0 + timedelta(minutes=i * 20 + 10))],
            source_kind="disconnect",
            source_ref=f"kv-{i}",
            idempotency_key=f"kv-{i}",
            now=NOW,
        )


def _fetch(client):
    def fetch(url):
        response = client.get(url.removeprefix("http://testserver"))
        assert response.status_code == 200, (url, response.status_code)
        return response.content

    return fetch


def test_a_receipt_the_portal_serves_verifies_with_the_package(client, member_client, member_user):
    others = [MemberFactory().member for _ in range(2)]
    _credits([member_user.member], 1)
    _credits(others, 20, start=1)
    ledger_publish_head(now=NOW)
    key = parse_verifier_key(client.get("/ledger/log/key").content.decode())
    entry = LedgerEntry.objects.filter(member=member_user.member).exclude(kind="opening").get()
    response = member_client.get(f"/my/compensation/{entry.public_id}/receipt.json")
    result = check_receipt(parse_receipt(response.content), key)
    assert result.index == entry.seq - 1
    assert result.entry["minutes"] == entry.minutes

    tampered = parse_receipt(response.content)
    tampered["entry"]["minutes"] += 1
    with pytest.raises(VerifyError) as caught:
        check_receipt(tampered, key)
    assert caught.value.code == "entry_mismatch"


@pytest.mark.ledger_tampered
def test_the_witness_follows_the_portal_and_refuses_a_rewritten_tree(client, tmp_path):
    members = [MemberFactory().member for _ in range(3)]
    _credits(members, 5)
    ledger_publish_head(now=NOW)
    key = parse_verifier_key(client.get("/ledger/log/key").content.decode())
    witness = Witness(url="http://testserver", key=key, state=tmp_path / "s", fetch=_fetch(client))
    first = witness.run().checkpoint.size
    _credits(members, 7, start=5)
    ledger_publish_head(now=NOW + timedelta(minutes=1))
    second = witness.run()
    assert second.previous.size == first < second.checkpoint.size

    # Someone rewrites the stored tree under the kept checkpoint (the subtree
    # of leaves 0-7) and the portal signs the history that follows from it.
    kept = (tmp_path / "s").read_text()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(
            'UPDATE compensation_ledgerloghash SET hash = %s WHERE "index" = %s',
            [b"\x07" * 32, tlog.stored_hash_index(3, 0)],
        )
    _credits(members, 3, start=12)
    ledger_publish_head(now=NOW + timedelta(minutes=2))
    with pytest.raises(VerifyError) as caught:
        witness.run()
    assert caught.value.code == "consistency_failed"
    assert (tmp_path / "s").read_text() == kept


@pytest.mark.ledger_tampered
def test_with_entries_the_witness_refuses_an_entry_rewritten_in_the_database(client, tmp_path):
    members = [MemberFactory().member for _ in range(3)]
    _credits(members, 6)
    ledger_publish_head(now=NOW)
    key = parse_verifier_key(client.get("/ledger/log/key").content.decode())
    witness = Witness(
        url="http://testserver",
        key=key,
        state=tmp_path / "s",
        fetch=_fetch(client),
        check_entries=True,
    )
    witness.run()
    victim = LedgerEntry.objects.exclude(kind="opening").order_by("seq")[2]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(
            "UPDATE compensation_ledgerentry SET minutes = minutes + 60 WHERE id = %s", [victim.pk]
        )
    _credits(members, 2, start=6)
    ledger_publish_head(now=NOW + timedelta(minutes=1))
    with pytest.raises(VerifyError) as caught:
        witness.run()
    assert caught.value.code == "entries_mismatch"
