"""Witness cosignatures (issue 23, item 5): the portal keeps the cosignature
of a configured witness over a checkpoint it published, serves it with the
checkpoint and shows it on /ledger/; anything else is a clear 4xx."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.core import checks
from django.db import connection

from compensation.log_keys import log_signer, log_verifier
from compensation.models import LedgerLogCheckpoint, LedgerLogCosignature
from compensation.services.ledger_publish import ledger_publish_head
from compensation.services.witnesses import CosignatureError, ledger_log_cosignature_add
from compensation.tests.conftest import T0, credit_disconnects
from compensation.tlog_notes import (
    ALG_COSIGNATURE_V1,
    Checkpoint,
    Signer,
    cosign_checkpoint,
    open_checkpoint,
    sign_checkpoint,
)
from members.tests.factories import MemberFactory

pytestmark = pytest.mark.django_db
NOW = T0 + timedelta(hours=3)
STAMP = int(NOW.timestamp())
URL = "/ledger/log/cosignature"


@pytest.fixture
def witness(settings):
    key = Signer.generate("witness.example.org", ALG_COSIGNATURE_V1)
    settings.LEDGER_LOG_WITNESS_KEYS = [key.verifier.vkey]
    return key


def _checkpoint(n=3) -> LedgerLogCheckpoint:
    members = [MemberFactory().member for _ in range(2)]
    credit_disconnects(members, LedgerLogCheckpoint.objects.count() * 10, n, prefix="w", now=NOW)
    ledger_publish_head(now=NOW)
    return LedgerLogCheckpoint.objects.order_by("-size").first()


def _cosigned(checkpoint, witness, stamp=STAMP) -> str:
    return cosign_checkpoint(checkpoint.note, log_verifier(), witness, stamp)


def _post(client, body, **extra):
    data = body.encode() if isinstance(body, str) else body
    return client.post(URL, data=data, content_type="text/plain; charset=utf-8", **extra)


def test_a_configured_witness_cosignature_is_kept_served_and_shown(client, witness):
    checkpoint = _checkpoint()
    response = _post(client, _cosigned(checkpoint, witness))
    assert response.status_code == 200
    assert response.json() == {
        "accepted": True,
        "size": checkpoint.size,
        "witnesses": [
            {
                "name": "witness.example.org",
                "cosigned_at": datetime.fromtimestamp(STAMP, UTC).isoformat(),
            }
        ],
    }
    # Served with the checkpoint: a reader who knows the witness's key checks it.
    served = client.get("/ledger/log/checkpoint").content.decode()
    opened = open_checkpoint(served, log_verifier(), witnesses=[witness.verifier])
    assert opened.cosigned_at(witness.verifier) == STAMP
    assert served.startswith(checkpoint.note)
    html = client.get("/ledger/", HTTP_COOKIE="django_language=en").content.decode()
    assert 'data-witness="witness.example.org"' in html and "latest" in html


def test_the_same_cosignature_twice_or_a_later_one_keeps_the_first(client, witness):
    checkpoint = _checkpoint()
    assert _post(client, _cosigned(checkpoint, witness)).status_code == 200
    assert _post(client, _cosigned(checkpoint, witness)).status_code == 200
    assert _post(client, _cosigned(checkpoint, witness, STAMP + 60)).status_code == 200
    row = LedgerLogCosignature.objects.get()
    assert row.cosigned_at == datetime.fromtimestamp(STAMP, UTC)
    # The served note carries the line once, so it still opens.
    served = client.get("/ledger/log/checkpoint").content.decode()
    assert served.count("— witness.example.org ") == 1
    open_checkpoint(served, log_verifier(), witnesses=[witness.verifier])


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_witness_runs_at_once_keep_one_cosignature(witness):
    checkpoint = _checkpoint()
    note = _cosigned(checkpoint, witness)
    barrier = threading.Barrier(4)
    outcomes = []

    def run():
        barrier.wait()
        try:
            outcomes.append(len(ledger_log_cosignature_add(note=note, now=NOW)))
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes == [1, 1, 1, 1]
    assert LedgerLogCosignature.objects.count() == 1


_refusals = pytest.mark.parametrize("lang", ["en", "zh-hans"])


@_refusals
def test_an_unknown_witness_is_refused_with_what_to_do(client, witness, lang):
    checkpoint = _checkpoint()
    stranger = Signer.generate("stranger.example", ALG_COSIGNATURE_V1)
    response = _post(client, _cosigned(checkpoint, stranger), HTTP_COOKIE=f"django_language={lang}")
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "unknown_witness" and body["accepted"] is False
    assert "LEDGER_LOG_WITNESS_KEYS" in body["detail"]
    if lang == "zh-hans":
        assert "见证" in body["detail"]
    assert not LedgerLogCosignature.objects.exists()


def test_a_checkpoint_the_log_never_published_is_refused(client, witness):
    checkpoint = _checkpoint()
    forged = sign_checkpoint(
        Checkpoint(
            open_checkpoint(checkpoint.note, log_verifier()).checkpoint.origin, 999, b"\1" * 32
        ),
        log_signer(),
    )
    response = _post(client, cosign_checkpoint(forged, log_verifier(), witness, STAMP))
    assert (response.status_code, response.json()["error"]) == (400, "unknown_checkpoint")


def test_a_checkpoint_signed_by_another_key_is_refused(client, witness):
    checkpoint = _checkpoint()
    parsed = open_checkpoint(checkpoint.note, log_verifier()).checkpoint
    impostor = Signer.generate(log_signer().name)
    note = sign_checkpoint(parsed, impostor)
    response = _post(client, cosign_checkpoint(note, impostor.verifier, witness, STAMP))
    assert (response.status_code, response.json()["error"]) == (400, "no_known_signature")


def test_a_cosignature_of_other_text_is_refused(client, witness):
    checkpoint = _checkpoint()
    good = _cosigned(checkpoint, witness)
    other = _checkpoint(1)  # a newer checkpoint: the witness line is not over its text
    text = other.note + good.splitlines(keepends=True)[-1]
    response = _post(client, text)
    assert (response.status_code, response.json()["error"]) == (400, "invalid_signature")


def test_a_cosignature_dated_in_the_future_is_refused(client, witness):
    checkpoint = _checkpoint()
    future = int((datetime.now(UTC) + timedelta(hours=1)).timestamp())
    response = _post(client, _cosigned(checkpoint, witness, future))
    assert (response.status_code, response.json()["error"]) == (400, "future_timestamp")


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not a note",
        b"\xff\xfe",
        b"{}",
        b"origin\n1\nAAAA\n\n\xe2\x80\x94 x AAAA\n",
        b"\0" * 100,
    ],
)
def test_what_is_not_a_signed_note_is_a_clear_400(client, witness, body):
    _checkpoint()
    response = _post(client, body)
    assert response.status_code == 400
    assert response.json()["accepted"] is False and response.json()["error"]


def test_without_configured_witnesses_the_door_says_so(client, settings):
    settings.LEDGER_LOG_WITNESS_KEYS = []
    checkpoint = _checkpoint()
    witness = Signer.generate("witness.example.org", ALG_COSIGNATURE_V1)
    response = _post(client, _cosigned(checkpoint, witness))
    assert (response.status_code, response.json()["error"]) == (404, "no_witnesses")
    html = client.get("/ledger/", HTTP_COOKIE="django_language=en").content.decode()
    assert 'data-testid="no-witnesses"' in html


def test_a_note_too_long_is_413_and_get_is_405(client, witness):
    response = _post(client, b"x" * (128 * 1024 + 1))
    assert (response.status_code, response.json()["error"]) == (413, "note_too_long")
    assert client.get(URL).status_code == 405


def test_a_flood_from_one_address_is_rate_limited(client, witness, monkeypatch):
    monkeypatch.setattr("compensation.log_views.COSIGNATURES_PER_HOUR", 3)
    for _ in range(3):
        assert _post(client, b"x").status_code == 400
    response = _post(client, b"x", HTTP_COOKIE="django_language=en")
    assert response.status_code == 429 and response["Retry-After"] == "3600"
    assert response.json()["error"] == "rate_limited"


def test_the_post_needs_no_csrf_token_or_session(witness):
    from django.test import Client

    checkpoint = _checkpoint()
    strict = Client(enforce_csrf_checks=True)
    assert _post(strict, _cosigned(checkpoint, witness)).status_code == 200


def test_a_bad_witness_key_is_named_at_start_up(settings):
    settings.LEDGER_LOG_WITNESS_KEYS = ["not-a-key"]
    errors = [e for e in checks.run_checks() if e.id == "compensation.E002"]
    assert len(errors) == 1 and "LEDGER_LOG_WITNESS_KEYS" in errors[0].msg
    settings.LEDGER_LOG_WITNESS_KEYS = [Signer.generate("log.example").verifier.vkey]
    errors = [e for e in checks.run_checks() if e.id == "compensation.E002"]
    assert len(errors) == 1 and "cosignature/v1" in errors[0].msg


def test_the_service_refuses_with_codes(witness):
    with pytest.raises(CosignatureError) as caught:
        ledger_log_cosignature_add(note="no", now=NOW)
    assert caught.value.code == "malformed"
