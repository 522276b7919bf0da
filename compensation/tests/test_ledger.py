"""Tamper evidence: verify_ledger, append-only below the ORM, verifiable receipts."""

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.db.utils import DatabaseError
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from compensation.log_keys import log_origin, log_verifier
from compensation.models import LedgerEntry, LedgerLogCheckpoint
from compensation.services.credit import compensation_credit
from compensation.services.ledger_publish import ledger_publish_head
from compensation.tests.conftest import T0
from members.tests.factories import MemberFactory

pytestmark = pytest.mark.django_db
NOW = T0 + timedelta(hours=3)


def _entries(n=5):
    members = [
        MemberFactory(membership__expires_at=T0 + timedelta(days=30)).member for _ in range(2)
    ]
    for i in range(n):
        compensation_credit(
            member_id=members[i % 2].pk,
            intervals=[(T0 + timedelta(minutes=i * 20), T0 + timedelta(minutes=i * 20 + 10))],
            source_kind="disconnect",
            source_ref=str(i),
            idempotency_key=f"k{i}",
            now=NOW,
        )
    return list(LedgerEntry.objects.exclude(kind="opening").order_by("seq"))


def _as_database_superuser_bypassing_triggers():
    # An attacker with superuser rights on PostgreSQL can switch the
    # append-only triggers off; the hash chain must still give them away.
    if connection.vendor == "postgresql":
        _raw_update("SET LOCAL session_replication_role = replica", [])


def _raw_update(sql, params):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_verify_ledger_passes_on_an_intact_chain():
    _entries()
    out = StringIO()
    call_command("verify_ledger", stdout=out)
    # Five credits after the two members' opening entries.
    assert "Ledger OK: 7 entries" in out.getvalue()


@pytest.mark.ledger_tampered
@pytest.mark.parametrize("field", ["minutes", "source_ref"])
def test_a_tampered_entry_fails_verification_naming_it(field):
    entries = _entries()
    victim = entries[2]
    _as_database_superuser_bypassing_triggers()
    value = 999 if field == "minutes" else "forged"
    _raw_update(
        f"UPDATE compensation_ledgerentry SET {field} = %s WHERE id = %s", [value, victim.pk]
    )
    with pytest.raises(CommandError, match=f"entry #{victim.seq}"):
        call_command("verify_ledger", stdout=StringIO(), stderr=StringIO())


@pytest.mark.ledger_tampered
def test_a_rewritten_chain_no_longer_matches_the_published_head():
    """Even recomputing every hash after an edit is caught: the head was public."""
    from compensation.ledger import digest, entry_body, link

    entries = _entries()
    ledger_publish_head(now=NOW)
    _as_database_superuser_bypassing_triggers()
    prev = entries[1].hash
    for entry in entries[2:]:
        entry.refresh_from_db()
        if entry.seq == entries[2].seq:
            _raw_update(
                "UPDATE compensation_ledgerentry SET minutes = 999 WHERE id = %s", [entry.pk]
            )
            entry = LedgerEntry.objects.select_related("member").get(pk=entry.pk)
        body_digest = digest(entry_body(entry, member_no=entry.member.member_no, reverses_seq=None))
        new_hash = link(prev, body_digest)
        _raw_update(
            "UPDATE compensation_ledgerentry SET body_digest=%s, prev_hash=%s, hash=%s WHERE id=%s",
            [body_digest, prev, new_hash, entry.pk],
        )
        prev = new_hash
    _raw_update("UPDATE compensation_ledgerhead SET hash=%s WHERE id=1", [prev])
    with pytest.raises(CommandError, match="published"):
        call_command("verify_ledger", stdout=StringIO(), stderr=StringIO())


@pytest.mark.postgres
def test_postgres_refuses_updates_and_deletes_below_the_orm():
    entry = _entries(1)[0]
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        _raw_update("UPDATE compensation_ledgerentry SET minutes = 1 WHERE id = %s", [entry.pk])
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        _raw_update("DELETE FROM compensation_ledgerentry WHERE id = %s", [entry.pk])


def test_receipt_verifies_with_the_documented_few_lines(member_client, member_user):
    member = member_user.member
    compensation_credit(
        member_id=member.pk,
        intervals=[(T0, T0 + timedelta(minutes=12))],
        source_kind="disconnect",
        source_ref="x",
        idempotency_key="x",
        now=NOW,
    )
    _entries(3)  # other members' entries after it
    head = ledger_publish_head(now=NOW)
    entry = LedgerEntry.objects.filter(member=member).exclude(kind="opening").get()
    response = member_client.get(f"/my/compensation/{entry.public_id}/receipt.json?version=1")
    assert response.status_code == 200
    assert "attachment" in response["Content-Disposition"]
    r = json.loads(response.content)

    # The version 1 snippet published on /ledger/, verbatim in substance:
    canon = json.dumps(
        r["entry"], sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()
    digest = hashlib.sha256(canon).hexdigest()
    assert digest == r["body_digest"]
    h = hashlib.sha256(f"{r['prev_hash']}:{digest}".encode()).hexdigest()
    assert h == r["hash"]
    for d in r["chain_to_head"]:
        h = hashlib.sha256(f"{h}:{d}".encode()).hexdigest()
    assert h == r["published_head"]["hash"] == head.hash
    assert len(r["chain_to_head"]) == 5  # two other members' openings, three credits
    # Receipts carry no other member's data.
    assert all(len(d) == 64 for d in r["chain_to_head"])


def test_someone_elses_receipt_is_not_found(client):
    entries = _entries(1)
    intruder = MemberFactory()
    client.force_login(intruder)
    response = client.get(f"/my/compensation/{entries[0].public_id}/receipt.json")
    assert response.status_code == 404


def test_public_chain_exposes_links_but_no_personal_data(client):
    entries = _entries(3)
    body = client.get("/ledger/chain.json?after=0&through=3").json()
    assert [e["seq"] for e in body["entries"]] == [1, 2, 3]
    assert body["entries"][2]["hash"] == entries[0].hash  # after the two openings
    assert entries[0].member.member_no not in json.dumps(body)
    assert client.get("/ledger/chain.json?after=x").status_code == 400
    assert client.get("/ledger/chain.json?after=5&through=1").status_code == 400


def test_the_snippet_published_on_the_ledger_page_verifies_a_downloaded_receipt(
    member_client, member_user, tmp_path, settings
):
    """Run the exact lines /ledger/ shows, as a member would, on a real receipt.
    The key's base64 holds a "+" (about half of all keys do), which a parser
    splitting on every "+" refused."""
    import html
    import re
    import subprocess
    import sys

    from compensation.tlog_notes import Signer

    signer = next(
        s
        for s in (Signer.generate(log_origin()) for _ in range(200))
        if "+" in s.verifier.vkey.split("+", 2)[2]
    )
    settings.LEDGER_LOG_SIGNING_KEY = signer.signer_key

    compensation_credit(
        member_id=member_user.member.pk,
        intervals=[(T0, T0 + timedelta(minutes=12))],
        source_kind="disconnect",
        source_ref="snippet",
        idempotency_key="snippet",
        now=NOW,
    )
    _entries(2)
    head = ledger_publish_head(now=NOW)
    entry = LedgerEntry.objects.exclude(kind="opening").get(member=member_user.member)
    response = member_client.get(f"/my/compensation/{entry.public_id}/receipt.json")
    filename = re.search(r'filename="([^"]+)"', response["Content-Disposition"]).group(1)
    (tmp_path / filename).write_bytes(response.content)
    page = member_client.get("/ledger/").content.decode()
    snippet = html.unescape(re.search(r'<pre class="code">(.*?)</pre>', page, re.S).group(1))
    (tmp_path / "verify.py").write_text(snippet, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "verify.py", filename],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    checkpoint = LedgerLogCheckpoint.objects.get()
    root = base64.b64encode(bytes(checkpoint.root)).decode()
    assert result.stdout.split() == ["OK", log_origin(), str(checkpoint.size), root]
    assert checkpoint.size == head.seq
    # With the verifier key from /ledger/log/key, it checks the signature too.
    (tmp_path / "ledger.key").write_bytes(member_client.get("/ledger/log/key").content)
    signed = subprocess.run(
        [sys.executable, "verify.py", filename, "ledger.key"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert signed.returncode == 0, signed.stderr
    assert signed.stdout.splitlines()[-1] == f"SIGNATURE OK {log_verifier().name}"
    # A receipt whose entry was edited fails, loudly.
    edited = json.loads(response.content)
    edited["entry"]["minutes"] += 1
    (tmp_path / "edited.json").write_text(json.dumps(edited), encoding="utf-8")
    failed = subprocess.run(
        [sys.executable, "verify.py", "edited.json"], cwd=tmp_path, capture_output=True, text=True
    )
    assert failed.returncode == 1 and "entry was altered" in failed.stderr

    # An entry newer than the last published head: the snippet says so
    # (exit status 1 and a clear message) instead of crashing.
    newer = compensation_credit(
        member_id=member_user.member.pk,
        intervals=[(T0 + timedelta(hours=1), T0 + timedelta(hours=1, minutes=9))],
        source_kind="disconnect",
        source_ref="snippet-2",
        idempotency_key="snippet-2",
        now=NOW + timedelta(minutes=1),
    ).entry
    response = member_client.get(f"/my/compensation/{newer.public_id}/receipt.json")
    (tmp_path / "pending.json").write_bytes(response.content)
    pending = subprocess.run(
        [sys.executable, "verify.py", "pending.json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert pending.returncode == 1
    assert "NOT YET IN A CHECKPOINT" in pending.stderr and "Traceback" not in pending.stderr
    # ... and when the next checkpoint is due, from the receipt.
    due = json.loads(response.content)["next_checkpoint_due"]
    assert due and f"the next checkpoint is due by {due}" in pending.stderr


# --- verify_ledger's fast scan (issue 23) -------------------------------------

_iso_or_none = st.one_of(
    st.none(),
    st.datetimes(
        min_value=datetime(1000, 1, 1),  # noqa: DTZ001 - hypothesis wants naive bounds
        max_value=datetime(9999, 12, 31),  # noqa: DTZ001
        timezones=st.just(UTC),
    ).map(lambda d: d.isoformat(timespec="microseconds")),
)
_text = st.text(max_size=20)


@hypothesis_settings(max_examples=300, deadline=None)
@given(
    strings=st.tuples(_text, _text, _text, _text),
    times=st.tuples(_iso_or_none, _iso_or_none, _iso_or_none, _iso_or_none, _iso_or_none),
    numbers=st.tuples(st.integers(1, 2**40), st.integers(-(2**31), 2**31), st.integers(0, 99)),
    reverses=st.one_of(st.none(), st.integers(1, 2**40)),
    weighting=st.one_of(st.none(), st.just("{}"), st.just('{"b": [1, 2.5], "a": "é"}')),
    tier=st.sampled_from(["", "gold"]),
)
def test_the_scan_encodes_a_row_exactly_as_canonical_does(
    strings, times, numbers, reverses, weighting, tier
):
    """The template that skips json.dumps for plain rows gives the very bytes
    canonical(body) gives, whatever the strings hold (quotes, controls, CJK)."""
    from compensation.ledger import _body, _pg_canonical, canonical

    member, kind, source, source_ref = strings
    covered_start, covered_end, before, after, created = times
    seq, minutes, policy = numbers
    public_id = "0b9a4e0e-3c1f-4f43-9d6c-1f2a3b4c5d6e"
    row = (
        seq,
        public_id,
        member,
        kind,
        minutes,
        source,
        source_ref,
        covered_start,
        covered_end,
        policy,
        reverses,
        before,
        after,
        created,
        weighting,
        tier,
    )
    parsed = {
        k: datetime.fromisoformat(v) if v else None for k, v in zip("abcde", times, strict=True)
    }
    expected = canonical(
        _body(
            seq=seq,
            public_id=public_id,
            member_no=member,
            kind=kind,
            minutes=minutes,
            source_kind=source,
            source_ref=source_ref,
            covered_start=parsed["a"],
            covered_end=parsed["b"],
            policy_version=policy,
            reverses_seq=reverses,
            expires_before=parsed["c"],
            expires_after=parsed["d"],
            created_at=parsed["e"],
            weighting=json.loads(weighting) if weighting else None,
            tier=tier,
        )
    )
    assert _pg_canonical(row) == expected


def test_the_scan_reads_every_entry_as_its_canonical_body():
    """On PostgreSQL the database formats the timestamps: whole seconds,
    other time zones, a reversal, a tier, a weighting and odd text all give
    the bytes entry_body gives from the model."""
    from zoneinfo import ZoneInfo

    from compensation.ledger import canonical, entry_body, ledger_pages
    from compensation.models import LedgerKind, SourceKind
    from compensation.services.chain import ledger_append

    member = MemberFactory().member
    expiry = member.expires_at  # the entries below move it and move it back
    shanghai = T0.astimezone(ZoneInfo("Asia/Shanghai")).replace(microsecond=0)
    first = LedgerEntry(
        member_id=member.pk,
        kind=LedgerKind.ADJUSTMENT,
        minutes=5,
        source_kind=SourceKind.MANUAL,
        source_ref='补偿 "quoted" \\ \x01',
        covered_start=shanghai,
        covered_end=shanghai + timedelta(microseconds=7),
        policy_version=1,
        expires_before=expiry,
        expires_after=expiry + timedelta(minutes=5),
        created_at=T0,
        weighting={"factor": 0.5, "peak": [1, 2]},
        tier="gold",
    )
    with transaction.atomic():
        ledger_append([first], member_nos={member.pk: member.member_no})
    second = LedgerEntry(
        member_id=member.pk,
        kind=LedgerKind.REVERSAL,
        minutes=-5,
        source_kind=SourceKind.MANUAL,
        source_ref="undo",
        policy_version=1,
        reverses=first,
        expires_before=expiry + timedelta(minutes=5),
        expires_after=expiry,
        created_at=T0 + timedelta(seconds=1),
    )
    with transaction.atomic():
        ledger_append([second], member_nos={member.pk: member.member_no})
    scanned = {seq: body for page in ledger_pages(batch_size=1) for seq, body, *_ in page}
    for entry in LedgerEntry.objects.select_related("member", "reverses"):
        reverses_seq = entry.reverses.seq if entry.reverses_id else None
        body = entry_body(entry, member_no=entry.member.member_no, reverses_seq=reverses_seq)
        assert scanned[entry.seq] == canonical(body)
    from compensation.log_verify import verify_chain_and_log

    (count, problems), (_leaves, _log) = verify_chain_and_log(batch_size=1)
    assert count == len(scanned) and problems == []
