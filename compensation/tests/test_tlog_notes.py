"""Signed notes, checkpoints and cosignatures: known answers and hostile input."""

import base64

import pytest

from compensation import tlog_notes as notes
from compensation.tlog_notes import (
    ALG_COSIGNATURE_V1,
    Checkpoint,
    NoteError,
    Signer,
)

# The worked example of golang.org/x/mod/sumdb/note's package documentation
# (v0.7.0): Ed25519 is deterministic, so our signature must be Go's, byte for byte.
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT
    + "\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)

ORIGIN = "portal.example.com/ledger"


@pytest.fixture(scope="module")
def log_key():
    return Signer.generate(ORIGIN)


@pytest.fixture(scope="module")
def checkpoint():
    return Checkpoint(ORIGIN, 20852163, bytes(range(32)))


def _code(callable_, *args, **kwargs):
    with pytest.raises(NoteError) as refused:
        callable_(*args, **kwargs)
    return refused.value.code


def test_signing_and_keys_match_gos_worked_example():
    signer = notes.parse_signer_key(GO_SKEY)
    verifier = notes.parse_verifier_key(GO_VKEY)
    assert signer.verifier == verifier
    assert signer.signer_key == GO_SKEY and verifier.vkey == GO_VKEY
    assert notes.sign_note(GO_TEXT, [signer]) == GO_NOTE
    opened = notes.open_note(GO_NOTE, [verifier])
    assert opened.text == GO_TEXT
    assert [s.name for s in opened.verified] == ["PeterNeumann"]
    assert opened.verified[0].key_id == 0xC74F20A3


def test_key_id_is_the_spec_hash_of_name_type_and_key(log_key):
    import hashlib

    public = log_key.verifier.public_key
    digest = hashlib.sha256(ORIGIN.encode() + b"\n\x01" + public).digest()
    assert log_key.key_id == int.from_bytes(digest[:4], "big")
    name, hex_id, encoded = log_key.verifier.vkey.split("+", 2)
    assert (name, hex_id) == (ORIGIN, f"{log_key.key_id:08x}")
    assert base64.b64decode(encoded) == b"\x01" + public


def test_checkpoint_body_is_origin_size_root(checkpoint):
    assert checkpoint.body == (
        f"{ORIGIN}\n20852163\n{base64.b64encode(bytes(range(32))).decode()}\n"
    )
    assert notes.parse_checkpoint(checkpoint.body) == checkpoint
    extended = Checkpoint(ORIGIN, 5, b"\1" * 32, ("extension line",))
    assert notes.parse_checkpoint(extended.body) == extended


@pytest.mark.parametrize(
    "body",
    [
        f"{ORIGIN}\n5\n",  # two lines
        f"{ORIGIN}\n05\n{'A' * 43}=\n",  # leading zero
        f"{ORIGIN}\n-5\n{'A' * 43}=\n",
        f"{ORIGIN}\n5 \n{'A' * 43}=\n",
        f"{ORIGIN}\n١٢\n{'A' * 43}=\n",  # Arabic-Indic digits
        f"{ORIGIN}\n99999999999999999999\n{'A' * 43}=\n",
        f"{ORIGIN}\n5\n{'A' * 42}==\n",  # 31 bytes
        f"{ORIGIN}\n5\nnot base64!\n",
        f"{ORIGIN}\n5\n{'A' * 43}=",  # no final newline
        f"{ORIGIN}\n5\n{'A' * 43}=\n\nextension after a blank\n",
        f"\n5\n{'A' * 43}=\n",
    ],
)
def test_malformed_checkpoints_are_refused(body):
    assert _code(notes.parse_checkpoint, body) == "bad_checkpoint"


def test_a_signed_checkpoint_opens_with_the_log_key(log_key, checkpoint):
    signed = notes.sign_checkpoint(checkpoint, log_key)
    opened = notes.open_checkpoint(signed, log_key.verifier)
    assert opened.checkpoint == checkpoint
    assert opened.note.verified_by(log_key.verifier) is not None


def test_a_checkpoint_for_another_origin_is_refused(log_key):
    other = Checkpoint("elsewhere.example/log", 1, b"\0" * 32)
    signed = notes.sign_checkpoint(other, log_key)
    assert _code(notes.open_checkpoint, signed, log_key.verifier) == "wrong_origin"
    opened = notes.open_checkpoint(signed, log_key.verifier, origin="elsewhere.example/log")
    assert opened.checkpoint.size == 1


def test_tampered_checkpoints_fail_the_signature(log_key, checkpoint):
    signed = notes.sign_checkpoint(checkpoint, log_key)
    grown = signed.replace("\n20852163\n", "\n20852164\n")
    assert _code(notes.open_checkpoint, grown, log_key.verifier) == "invalid_signature"
    text, _, line = signed.rpartition("\n\n")
    blob = bytearray(base64.b64decode(line.split(" ")[-1]))
    blob[-1] ^= 1
    forged = text + "\n\n— " + ORIGIN + " " + base64.b64encode(bytes(blob)).decode() + "\n"
    assert _code(notes.open_checkpoint, forged, log_key.verifier) == "invalid_signature"
    stranger = Signer.generate(ORIGIN)
    by_stranger = notes.sign_checkpoint(checkpoint, stranger)
    # Same name, another key ID: an unknown key, ignored, so nothing verifies.
    with pytest.raises(NoteError) as refused:
        notes.open_checkpoint(by_stranger, log_key.verifier)
    assert refused.value.code == "no_known_signature"
    assert [s.name for s in refused.value.note.unverified] == [ORIGIN]


def test_unknown_signatures_are_kept_unverified(log_key, checkpoint):
    other = Signer.generate("other.example/key")
    both = notes.sign_note(checkpoint.body, [other, log_key])
    opened = notes.open_note(both, [log_key.verifier])
    assert [s.name for s in opened.verified] == [ORIGIN]
    assert [s.name for s in opened.unverified] == ["other.example/key"]


def _signed(log_key, checkpoint):
    return notes.sign_checkpoint(checkpoint, log_key)


@pytest.mark.parametrize(
    "mangle, code",
    [
        (lambda m: m.encode() + b"\xff", "not_utf8"),
        (lambda m: m.replace(ORIGIN, ORIGIN + "\t", 1), "control_character"),
        (lambda m: m.replace(ORIGIN, ORIGIN + "\r", 1), "control_character"),
        (lambda m: m.replace("\n\n", "\n"), "malformed"),
        (lambda m: m[:-1], "malformed"),
        (lambda m: m + "\n", "malformed"),  # the last blank line is the separator
        (lambda m: m.replace("— ", "- ", 1), "bad_signature_line"),
        (lambda m: m.replace(f"— {ORIGIN} ", f"— {ORIGIN}", 1), "bad_signature_line"),
        (lambda m: m.replace(f"— {ORIGIN} ", "— a+b ", 1), "bad_signature_line"),
        (lambda m: m.replace(f"— {ORIGIN} ", f"— {ORIGIN}\u00a0x ", 1), "bad_signature_line"),
        (lambda m: m[:-2] + "!\n", "bad_base64"),
        (lambda m: m[:-3] + "\n", "bad_base64"),  # padding cut off
        (lambda m: m + "— x AAAA\n", "bad_signature_line"),  # key ID only
        (lambda m: m + m[m.rindex("— ") :], "duplicate_signature"),
        (lambda m: m + "— x AAAAAAA=\n" * 100, "too_many_signatures"),
        (lambda m: "x" * (notes.MAX_NOTE_SIZE + 1) + m, "note_too_long"),
    ],
)
def test_hostile_notes_are_refused_with_a_code(log_key, checkpoint, mangle, code):
    message = mangle(_signed(log_key, checkpoint))
    assert _code(notes.open_note, message, [log_key.verifier]) == code


def test_repeated_unknown_signatures_count_once(log_key, checkpoint):
    message = _signed(log_key, checkpoint) + "— x AAAAAAA=\n" * 3
    assert len(notes.open_note(message, [log_key.verifier]).unverified) == 1


@pytest.mark.parametrize(
    "vkey, code",
    [
        ("name+c74f20a3", "bad_key"),
        ("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "bad_key_id"),
        ("PeterNeumann+c74f20+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "bad_key"),
        ("PeterNeumann+c74f20zz+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "bad_key"),
        ("PeterNeumann+c74f20a3+Bhpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "unknown_algorithm"),
        ("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10", "bad_base64"),
        ("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy", "bad_key"),
        ("Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "bad_key_name"),
        ("+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "bad_key_name"),
    ],
)
def test_malformed_verifier_keys_are_refused(vkey, code):
    assert _code(notes.parse_verifier_key, vkey) == code


def test_malformed_signer_keys_are_refused():
    assert _code(notes.parse_signer_key, GO_VKEY) == "bad_key"
    assert _code(notes.parse_signer_key, GO_SKEY.replace("c74f20a3", "c74f20a4")) == "bad_key_id"
    assert _code(notes.parse_signer_key, "PRIVATE+KEY+x+00000000+!!") == "bad_base64"


# --- cosignatures (C2SP tlog-cosignature, cosignature/v1) ---------------------------------


def test_a_witness_cosignature_verifies_and_carries_its_time(log_key, checkpoint):
    witness = Signer.generate("witness.example/w1", ALG_COSIGNATURE_V1)
    signed = notes.sign_checkpoint(checkpoint, log_key)
    cosigned = notes.cosign_checkpoint(signed, log_key.verifier, witness, 1679315147)
    assert cosigned.startswith(signed)  # the log's signature first, untouched
    opened = notes.open_checkpoint(cosigned, log_key.verifier, witnesses=[witness.verifier])
    assert opened.cosigned_at(witness.verifier) == 1679315147
    # The signed message is the spec's: header, time line, checkpoint body.
    sig = opened.note.verified_by(witness.verifier).signature
    assert sig[:8] == (1679315147).to_bytes(8, "big") and len(sig) == 72
    message = b"cosignature/v1\ntime 1679315147\n" + checkpoint.body.encode()
    assert witness.verifier._ed25519_ok(message, sig[8:])
    # Its key ID uses type byte 0x04, so an Ed25519 note key cannot pass for it.
    assert base64.b64decode(witness.verifier.vkey.split("+", 2)[2])[0] == 0x04
    plain = notes.Verifier(witness.name, witness.verifier.public_key)
    assert plain.key_id != witness.key_id


def test_a_cosignature_over_another_time_or_checkpoint_fails(log_key, checkpoint):
    witness = Signer.generate("witness.example/w2", ALG_COSIGNATURE_V1)
    signed = notes.sign_checkpoint(checkpoint, log_key)
    cosigned = notes.cosign_checkpoint(signed, log_key.verifier, witness, 1_700_000_000)
    line = cosigned.rstrip("\n").rsplit("\n", 1)[1]
    blob = bytearray(base64.b64decode(line.split(" ")[-1]))
    blob[4 + 7] ^= 1  # another timestamp, same signature
    forged = cosigned.replace(
        line,
        line.split(" ")[0]
        + " "
        + line.split(" ")[1]
        + " "
        + base64.b64encode(bytes(blob)).decode(),
    )
    assert (
        _code(notes.open_checkpoint, forged, log_key.verifier, witnesses=[witness.verifier])
        == "invalid_signature"
    )
    # Moved onto another checkpoint of the same log: invalid too.
    other = notes.sign_checkpoint(Checkpoint(ORIGIN, 1, b"\2" * 32), log_key)
    moved = other + line + "\n"
    assert (
        _code(notes.open_checkpoint, moved, log_key.verifier, witnesses=[witness.verifier])
        == "invalid_signature"
    )


def test_only_a_cosignature_key_cosigns(log_key, checkpoint):
    signed = notes.sign_checkpoint(checkpoint, log_key)
    assert _code(notes.cosign_checkpoint, signed, log_key.verifier, log_key, 1) == "bad_key"
    witness = Signer.generate("witness.example/w3", ALG_COSIGNATURE_V1)
    assert _code(witness.sign, b"text\n") == "bad_timestamp"
