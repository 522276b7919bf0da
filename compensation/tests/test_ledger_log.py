"""The ledger's transparency log wired to the ledger: the sequencer, signed
checkpoints, the key, the public endpoints, version 2 receipts and
verify_ledger's recomputation of the tree (issue 23)."""

import base64
import json
import os
import stat
from datetime import timedelta
from io import StringIO

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import override_settings

from compensation import tlog
from compensation.ledger import canonical, entry_body
from compensation.log_keys import log_origin, log_signer, log_verifier
from compensation.log_verify import verify_log
from compensation.models import LedgerEntry, LedgerLogCheckpoint, LedgerLogHash, LedgerLogHead
from compensation.services.credit import compensation_credit
from compensation.services.ledger_log import ledger_log_integrate, ledger_log_publish
from compensation.services.ledger_publish import ledger_publish_head
from compensation.tests.conftest import T0
from compensation.tlog_notes import Signer, open_checkpoint, parse_verifier_key
from members.tests.factories import MemberFactory

pytestmark = pytest.mark.django_db
NOW = T0 + timedelta(hours=3)


def _credits(n, members=None):
    members = members or [MemberFactory().member for _ in range(3)]
    for i in range(n):
        compensation_credit(
            member_id=members[i % len(members)].pk,
            intervals=[(T0 + timedelta(minutes=i * 20), T0 + timedelta(minutes=i * 20 + 10))],
            source_kind="disconnect",
            source_ref=f"log-{i}",
            idempotency_key=f"log-{i}",
            now=NOW,
        )
    return members


def _leaf_data():
    return [
        canonical(
            entry_body(
                e,
                member_no=e.member.member_no,
                reverses_seq=e.reverses.seq if e.reverses_id else None,
            )
        )
        for e in LedgerEntry.objects.order_by("seq").select_related("member", "reverses")
    ]


def _raw(sql, params=()):
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # A database superuser switching the append-only triggers off.
            cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(sql, params)


def test_the_sequencer_makes_every_entry_a_leaf_once_in_seq_order():
    _credits(7)
    size = ledger_log_integrate(batch_size=3)  # several batches
    leaves = _leaf_data()
    assert size == len(leaves) == LedgerEntry.objects.count()
    reference = tlog.MemoryHashStore()
    reference.append(leaves)
    head = LedgerLogHead.objects.get()
    assert bytes(head.root) == reference.tree_hash()
    assert LedgerLogHash.objects.count() == tlog.stored_hash_count(size)
    # Running it again (a retried task, a second beat) adds nothing.
    assert ledger_log_integrate() == size
    assert LedgerLogHash.objects.count() == tlog.stored_hash_count(size)
    # Later entries extend the same tree.
    _credits(2)
    assert ledger_log_integrate() == LedgerEntry.objects.count() > size
    reference.append(_leaf_data()[size:])
    assert bytes(LedgerLogHead.objects.get().root) == reference.tree_hash()


def test_publishing_signs_a_checkpoint_only_when_the_tree_grew():
    _credits(3)
    ledger_publish_head(now=NOW)
    first = LedgerLogCheckpoint.objects.get()
    opened = open_checkpoint(first.note, log_verifier(), origin=log_origin())
    assert opened.checkpoint.size == LedgerEntry.objects.count() == first.size
    assert opened.checkpoint.root_hash == bytes(first.root)
    ledger_publish_head(now=NOW + timedelta(minutes=1))
    assert LedgerLogCheckpoint.objects.count() == 1
    _credits(1)
    ledger_publish_head(now=NOW + timedelta(minutes=2))
    assert list(LedgerLogCheckpoint.objects.values_list("size", flat=True)) == [
        LedgerEntry.objects.count(),
        first.size,
    ]


def test_the_origin_defaults_to_the_sites_host(settings, tmp_path):
    settings.LEDGER_LOG_ORIGIN = ""
    settings.LEDGER_LOG_SIGNING_KEY = ""
    settings.DATA_DIR = tmp_path  # the key is made now, named for the site's host
    settings.PORTAL_BASE_URL = "https://portal.example.com"
    assert log_origin() == "portal.example.com/ledger"
    # Served elsewhere later, the checkpoints keep the key's origin.
    settings.PORTAL_BASE_URL = "http://127.0.0.1:18000"
    assert log_origin() == "portal.example.com/ledger" == log_signer().name
    settings.LEDGER_LOG_ORIGIN = "kamen.example/ledger"
    assert log_origin() == "kamen.example/ledger"


def test_the_embedded_default_key_is_made_once_readable_by_its_owner_only(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    settings.LEDGER_LOG_KEY_FILE = ""
    settings.LEDGER_LOG_SIGNING_KEY = ""
    signer = log_signer()
    path = tmp_path / "ledger-log.key"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert path.read_text().strip() == signer.signer_key
    assert log_signer() == signer  # the same key on the next use


def test_a_configured_key_file_that_is_missing_is_a_clear_error(settings, tmp_path):
    settings.LEDGER_LOG_KEY_FILE = str(tmp_path / "nope.key")
    with pytest.raises(ImproperlyConfigured, match="ledger_keygen"):
        log_signer()


def test_a_key_from_the_environment_wins_and_must_be_a_signer_key(settings):
    signer = Signer.generate("env.example/ledger")
    settings.LEDGER_LOG_SIGNING_KEY = signer.signer_key
    assert log_signer() == signer
    settings.LEDGER_LOG_SIGNING_KEY = signer.verifier.vkey
    with pytest.raises(ImproperlyConfigured, match="LEDGER_LOG_SIGNING_KEY"):
        log_signer()


def test_ledger_keygen_writes_a_private_file_and_refuses_to_overwrite(tmp_path):
    path = tmp_path / "keys" / "log.key"
    out = StringIO()
    call_command("ledger_keygen", output=str(path), name="k.example/ledger", stdout=out)
    vkey = parse_verifier_key(out.getvalue().strip())
    assert vkey.name == "k.example/ledger"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with pytest.raises(CommandError, match="--force"):
        call_command("ledger_keygen", output=str(path), stdout=StringIO(), stderr=StringIO())
    call_command(
        "ledger_keygen", output=str(path), force=True, stdout=StringIO(), stderr=StringIO()
    )
    assert path.read_text().strip() != ""


# --- public endpoints ----------------------------------------------------------


def test_checkpoint_and_key_are_public_plain_text_without_a_session(client):
    assert client.get("/ledger/log/checkpoint").status_code == 404  # none signed yet
    _credits(2)
    ledger_publish_head(now=NOW)
    response = client.get("/ledger/log/checkpoint")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert "public" in response["Cache-Control"]
    assert "Set-Cookie" not in response and not response.cookies
    key = client.get("/ledger/log/key")
    assert key["Content-Type"].startswith("text/plain")
    verifier = parse_verifier_key(key.content.decode())
    opened = open_checkpoint(response.content, verifier, origin=log_origin())
    assert opened.checkpoint.size == LedgerEntry.objects.count()


def test_the_ledger_page_shows_the_verifier_key_and_the_checkpoint(client):
    _credits(1)
    ledger_publish_head(now=NOW)
    html = client.get("/ledger/").content.decode()
    assert f'data-testid="log-key">{log_verifier().vkey}<' in html
    assert 'data-testid="log-checkpoint"' in html


def test_tiles_fetched_over_http_recompute_the_checkpoints_root(client):
    members = [MemberFactory().member for _ in range(4)]
    _credits(300, members)  # more than one full tile of leaves
    ledger_publish_head(now=NOW)
    cp = LedgerLogCheckpoint.objects.get()
    assert cp.size > tlog.TILE_WIDTH
    fetched = {}

    def read_tiles(tiles):
        out = []
        for t in tiles:
            response = client.get(f"/ledger/log/{t.path}")
            assert response.status_code == 200, t.path
            cache = response["Cache-Control"]
            assert ("immutable" in cache) == t.is_full
            fetched[t] = response.content
            out.append(response.content)
        return out

    reader = tlog.TileHashReader(cp.size, bytes(cp.root), read_tiles)
    assert tlog.tree_hash(cp.size, reader) == bytes(cp.root)
    leaf = tlog.leaf_hash(_leaf_data()[0])
    proof = tlog.inclusion_proof(0, cp.size, reader)  # reads the full tile of leaves
    tlog.check_inclusion(proof, cp.size, bytes(cp.root), 0, leaf)
    assert any(t.is_full for t in fetched) and any(not t.is_full for t in fetched)
    # The entry bundles hold every leaf's data and recompute the root too.
    mirror = tlog.MemoryHashStore()
    for t in tlog.tiles_for_size(cp.size, entries=True):
        response = client.get(f"/ledger/log/{t.path}")
        assert response.status_code == 200
        mirror.append(tlog.parse_entry_bundle(response.content, t.width))
    assert mirror.tree_hash() == bytes(cp.root)
    # Entry bundles carry what receipts publish, no e-mail or name.
    bundle = client.get("/ledger/log/tile/entries/000").content
    assert members[0].user.email.encode() not in bundle


@pytest.mark.parametrize(
    "path",
    [
        "tile/0/001",  # beyond the tree
        "tile/0/000.p/200",  # wider than the tree
        "tile/0/0",
        "tile/0/000.p/0",
        "tile/0/000.p/256",
        "tile/9999999999999999999999/000",
        "tile/entries/x000/000",
        "tile/../000",
        "tile/",
        "tile/1/000",
    ],
)
def test_bad_tile_paths_are_404_never_500(client, path):
    _credits(1)
    ledger_publish_head(now=NOW)
    assert client.get(f"/ledger/log/{path}").status_code == 404


def test_consistency_proofs_verify_between_two_checkpoints(client):
    _credits(3)
    ledger_publish_head(now=NOW)
    _credits(5)
    ledger_publish_head(now=NOW + timedelta(minutes=1))
    new, old = LedgerLogCheckpoint.objects.order_by("-size")
    response = client.get(f"/ledger/log/consistency?old={old.size}&new={new.size}")
    assert response.status_code == 200
    body = response.json()
    assert (body["old"], body["new"]) == (old.size, new.size)
    proof = [base64.b64decode(h) for h in body["proof"]]
    tlog.check_consistency(proof, old.size, bytes(old.root), new.size, bytes(new.root))


@pytest.mark.parametrize(
    "query",
    ["", "old=1", "old=a&new=2", "old=-1&new=2", "old=3&new=2", "old=1&new=999", "old=1&new=1e3"],
)
def test_bad_consistency_sizes_are_a_clear_400(client, query):
    _credits(1)
    ledger_publish_head(now=NOW)
    response = client.get(f"/ledger/log/consistency?{query}")
    assert response.status_code == 400
    assert response.json()["error"] == "bad_size"


# --- receipts of version 2 -----------------------------------------------------


def test_a_version_2_receipt_proves_its_entry_against_the_signed_checkpoint(
    member_client, member_user
):
    _credits(1, [member_user.member])
    _credits(40)  # other members' entries after it
    ledger_publish_head(now=NOW)
    entry = LedgerEntry.objects.filter(member=member_user.member).exclude(kind="opening").get()
    response = member_client.get(f"/my/compensation/{entry.public_id}/receipt.json")
    r = response.json()
    assert r["receipt_version"] == 2 and "chain_to_head" not in r
    log = r["log"]
    leaf = base64.b64decode(log["leaf_data"])
    assert leaf == canonical(r["entry"]) and log["index"] == entry.seq - 1
    opened = open_checkpoint(log["checkpoint"], log_verifier(), origin=log_origin())
    cp = opened.checkpoint
    proof = [base64.b64decode(h) for h in log["proof"]]
    tlog.check_inclusion(proof, cp.size, cp.root_hash, log["index"], tlog.leaf_hash(leaf))
    assert len(proof) <= cp.size.bit_length()
    assert len(response.content) < 4096
    # The old format stays available for tools written against it.
    v1 = member_client.get(f"/my/compensation/{entry.public_id}/receipt.json?version=1").json()
    assert v1["receipt_version"] == 1 and "chain_to_head" in v1
    bad = member_client.get(f"/my/compensation/{entry.public_id}/receipt.json?version=9")
    assert bad.status_code == 400 and bad.json()["error"] == "bad_version"


# --- verify_ledger ----------------------------------------------------------------


def test_verify_ledger_recomputes_the_tree_and_every_checkpoint():
    _credits(6)
    ledger_publish_head(now=NOW)
    _credits(3)
    ledger_publish_head(now=NOW + timedelta(minutes=1))
    _credits(1)  # not yet integrated: not a problem
    leaves, problems = verify_log(batch_size=4)
    assert problems == [] and leaves == LedgerEntry.objects.count()
    out = StringIO()
    call_command("verify_ledger", stdout=out)
    assert "signed checkpoint" in out.getvalue()


@pytest.mark.ledger_tampered
def test_an_entry_changed_by_raw_sql_fails_the_log_check():
    _credits(6)
    ledger_publish_head(now=NOW)
    victim = LedgerEntry.objects.exclude(kind="opening").order_by("seq")[2]
    _raw("UPDATE compensation_ledgerentry SET minutes = minutes + 60 WHERE id = %s", [victim.pk])
    _leaves, problems = verify_log()
    assert problems
    assert problems[0].seq == victim.seq
    messages = " ".join(p.message for p in problems)
    assert "stored log hash" in messages and "root differs" in messages
    with pytest.raises(CommandError, match="FAILED"):
        call_command("verify_ledger", stdout=StringIO(), stderr=StringIO())


def test_a_rewritten_stored_hash_or_forged_checkpoint_fails_the_log_check(settings):
    _credits(4)
    ledger_publish_head(now=NOW)
    _raw('UPDATE compensation_ledgerloghash SET hash = %s WHERE "index" = 3', [b"\x00" * 32])
    _leaves, problems = verify_log()
    assert any("stored log hash 3" in p.message for p in problems)


def test_a_checkpoint_signed_by_an_unknown_key_fails_the_log_check(settings):
    _credits(2)
    ledger_log_integrate()
    ledger_log_publish(now=NOW)
    settings.LEDGER_LOG_SIGNING_KEY = Signer.generate(log_origin()).signer_key  # rotated away
    _leaves, problems = verify_log()
    assert any("not signed by a known key" in p.message for p in problems)
    # ... unless the old key is still trusted for what it signed.
    settings.LEDGER_LOG_SIGNING_KEY = ""
    old = log_verifier().vkey
    settings.LEDGER_LOG_SIGNING_KEY = Signer.generate(log_origin()).signer_key
    settings.LEDGER_LOG_PREVIOUS_KEYS = [old]
    assert verify_log()[1] == []


def test_receipts_and_tiles_publish_the_same_bytes(member_client, member_user):
    _credits(2, [member_user.member])
    ledger_publish_head(now=NOW)
    entry = LedgerEntry.objects.filter(member=member_user.member).order_by("seq").last()
    r = member_client.get(f"/my/compensation/{entry.public_id}/receipt.json").json()
    bundle = member_client.get(
        "/ledger/log/" + tlog.tile_path(tlog.Tile(tlog.ENTRIES_LEVEL, 0, r["log"]["index"] + 1))
    ).content
    assert tlog.parse_entry_bundle(bundle)[-1] == base64.b64decode(r["log"]["leaf_data"])
    assert json.loads(base64.b64decode(r["log"]["leaf_data"])) == r["entry"]


@override_settings(LEDGER_LOG_ORIGIN="bad origin\nline")
def test_an_origin_with_a_newline_is_refused_at_signing(db):
    with pytest.raises(Exception, match="origin"):
        ledger_log_publish(now=NOW)


def test_the_log_section_and_its_errors_speak_chinese_by_default(client):
    html = client.get("/ledger/").content.decode()
    assert "透明日志" in html and "验证公钥" in html and "尚未签署任何检查点" in html
    response = client.get("/ledger/log/consistency?old=x&new=1")
    assert "old 和 new 必须是树的大小" in response.json()["detail"]
