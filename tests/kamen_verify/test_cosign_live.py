"""A witness run against the running portal cosigns each checkpoint it
accepts and sends the cosignature back (``--submit``); the portal serves it
with the checkpoint and shows it on /ledger/ (issue 23, item 5)."""

import urllib.request
from datetime import timedelta

import pytest
from kamen_verify.__main__ import main

from compensation.models import LedgerLogCosignature
from compensation.services.ledger_publish import ledger_publish_head
from compensation.tests.conftest import T0, credit_disconnects
from compensation.tlog_notes import open_checkpoint, parse_verifier_key
from members.tests.factories import MemberFactory

pytestmark = pytest.mark.django_db(transaction=True)
NOW = T0 + timedelta(hours=3)


def _credits(members, start, n):
    credit_disconnects(members, start, n, prefix="cw", now=NOW)


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (loopback test server)
        return response.read().decode()


def _keygen(tmp_path, capsys, name):
    path = tmp_path / f"{name}.key"
    assert main(["witness-keygen", name, "--output", str(path)]) == 0
    return path, capsys.readouterr().out.strip()


def test_a_witness_cosigns_every_checkpoint_it_accepts_and_the_portal_shows_it(
    live_server, settings, tmp_path, capsys
):
    key_file, vkey = _keygen(tmp_path, capsys, "witness.example.org")
    settings.LEDGER_LOG_WITNESS_KEYS = [vkey]
    members = [MemberFactory().member for _ in range(3)]
    _credits(members, 0, 5)
    ledger_publish_head(now=NOW)
    log_key = _get(f"{live_server.url}/ledger/log/key").strip()
    args = ["witness", "--url", live_server.url, "--key", log_key, "--state", str(tmp_path / "s")]
    cosign = [*args, "--cosign-key", f"@{key_file}", "--submit"]

    assert main(cosign) == 0
    assert "cosigned checkpoint" in capsys.readouterr().err
    _credits(members, 5, 4)
    ledger_publish_head(now=NOW + timedelta(minutes=1))
    assert main(cosign) == 0
    assert main(cosign) == 0  # the same checkpoint again: kept once
    rows = list(LedgerLogCosignature.objects.order_by("checkpoint__size"))
    assert [r.checkpoint.size for r in rows] == sorted({r.checkpoint.size for r in rows})
    assert len(rows) == 2

    served = _get(f"{live_server.url}/ledger/log/checkpoint")
    witness = parse_verifier_key(vkey)
    opened = open_checkpoint(served, parse_verifier_key(log_key), witnesses=[witness])
    assert opened.cosigned_at(witness) is not None
    # A witness that does not know this one's key still accepts the note.
    assert main(args) == 0
    page = _get(f"{live_server.url}/ledger/")
    assert 'data-witness="witness.example.org"' in page

    # A witness the operator never listed: the checkpoint is accepted, the
    # cosignature refused with what to do, and the exit status says setup.
    stranger_file, _ = _keygen(tmp_path, capsys, "stranger.example")
    stranger = [*args[:-1], str(tmp_path / "s2"), "--cosign-key", f"@{stranger_file}", "--submit"]
    assert main(stranger) == 2
    assert "unknown_witness" in capsys.readouterr().err
    assert LedgerLogCosignature.objects.count() == 2


def test_submit_without_a_cosign_key_is_a_usage_error(capsys):
    assert (
        main(["witness", "--url", "http://127.0.0.1:9", "--key", "x", "--state", "s", "--submit"])
        == 2
    )
