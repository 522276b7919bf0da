"""kamen_verify checks version 2 receipts offline, agreeing with the portal's
own log code on good ones and naming what is wrong with bad ones (issue 23,
item 5 "Witnesses" (a))."""

import ast
import base64
import copy
import hashlib
from pathlib import Path

import pytest

from compensation import tlog
from compensation.ledger import canonical
from compensation.tlog_notes import Signer
from kamen_verify import VerifyError, canonical_json, check_receipt, parse_verifier_key

from .portal_log import PortalLog, b64

PACKAGE = Path(__file__).resolve().parents[2] / "kamen_verify" / "src" / "kamen_verify"


@pytest.fixture(scope="module")
def log():
    log = PortalLog()
    log.append(300)
    return log


def _code(receipt, vkey, **kwargs):
    with pytest.raises(VerifyError) as caught:
        check_receipt(receipt, parse_verifier_key(vkey), **kwargs)
    return caught.value.code


@pytest.mark.parametrize("size", [1, 2, 7, 8, 9, 256, 257, 300])
def test_every_leaf_of_a_tree_of_the_portals_verifies(log, size):
    key = parse_verifier_key(log.vkey)
    seqs = range(1, size + 1) if size < 20 else [1, size // 2, size - 1, size]
    for seq in seqs:
        result = check_receipt(log.receipt(seq, size), key)
        assert result.index == seq - 1 and result.checkpoint.size == size
        assert f"entry #{seq}" in result.summary


def test_the_root_from_leaves_is_the_portals_tree_hash():
    from kamen_verify.merkle import root_from_leaf_hashes

    store = tlog.MemoryHashStore()
    leaves = [tlog.leaf_hash(b"%d" % i) for i in range(300)]
    store.append_leaf_hashes(leaves)
    for size in [*range(0, 70), 255, 256, 257, 300]:
        assert root_from_leaf_hashes(leaves[:size]) == store.tree_hash(size)


def test_the_canonical_json_is_the_portals(log):
    for b in log.bodies[:6]:
        assert canonical_json(b) == canonical(b)


def test_changed_minutes_are_an_entry_mismatch(log):
    receipt = log.receipt(5)
    receipt["entry"]["minutes"] = 3000
    assert _code(receipt, log.vkey) == "entry_mismatch"


def test_a_forged_leaf_with_its_digest_is_an_inclusion_failure(log):
    receipt = log.receipt(5)
    receipt["entry"]["minutes"] = 3000
    leaf = canonical(receipt["entry"])
    receipt["log"]["leaf_data"] = b64(leaf)
    receipt["body_digest"] = hashlib.sha256(leaf).hexdigest()
    assert _code(receipt, log.vkey) == "inclusion_failed"


def test_a_stale_body_digest_is_refused(log):
    receipt = log.receipt(5)
    receipt["body_digest"] = "0" * 64
    assert _code(receipt, log.vkey) == "digest_mismatch"


@pytest.mark.parametrize("position", [0, 3, -1])
def test_a_flipped_proof_byte_is_an_inclusion_failure(log, position):
    receipt = log.receipt(42)
    proof = receipt["log"]["proof"]
    raw = bytearray(base64.b64decode(proof[position]))
    raw[7] ^= 0x01
    proof[position] = b64(bytes(raw))
    assert _code(receipt, log.vkey) == "inclusion_failed"


def test_a_shortened_proof_or_moved_index_is_an_inclusion_failure(log):
    receipt = log.receipt(42)
    receipt["log"]["proof"].pop()
    assert _code(receipt, log.vkey) == "inclusion_failed"
    receipt = log.receipt(42)
    receipt["log"]["index"] = 42
    assert _code(receipt, log.vkey) == "inclusion_failed"


def test_another_key_is_refused_as_not_the_logs(log):
    other = Signer.generate(log.origin)  # same name, different key
    assert _code(log.receipt(5), other.verifier.vkey) == "unknown_key"


@pytest.mark.parametrize("line", [1, 2])  # the size, the root
def test_an_edited_checkpoint_fails_its_signature(log, line):
    receipt = log.receipt(5, 200)
    lines = receipt["log"]["checkpoint"].split("\n")
    edited = PortalLog(log.signer)
    edited.bodies, edited.store = log.bodies, log.store
    lines[line] = edited.checkpoint(300).split("\n")[line]
    receipt["log"]["checkpoint"] = "\n".join(lines)
    assert _code(receipt, log.vkey) == "bad_signature"


def test_a_checkpoint_for_another_origin_is_refused(log):
    assert _code(log.receipt(5), log.vkey, origin="other.example/ledger") == "wrong_origin"


def test_a_garbled_checkpoint_is_malformed(log):
    receipt = log.receipt(5)
    receipt["log"]["checkpoint"] = receipt["log"]["checkpoint"].replace("\n\n", "\n")
    assert _code(receipt, log.vkey) == "malformed_checkpoint"


def test_an_entry_newer_than_the_checkpoint_says_when_to_come_back(log):
    receipt = log.receipt(5)
    receipt["log"] = None
    receipt["next_checkpoint_due"] = "2026-12-07T12:01:00+00:00"
    with pytest.raises(VerifyError) as caught:
        check_receipt(receipt, parse_verifier_key(log.vkey))
    assert caught.value.code == "not_in_log"
    assert "2026-12-07T12:01:00+00:00" in caught.value.message


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (lambda r: r.update(receipt_version=1), "unsupported_version"),
        (lambda r: r.pop("entry"), "malformed_receipt"),
        (lambda r: r["log"].update(index="4"), "malformed_receipt"),
        (lambda r: r["log"].update(proof="abc"), "malformed_receipt"),
        (lambda r: r["log"].update(leaf_data="!!"), "malformed_receipt"),
        (lambda r: r["log"].update(checkpoint=7), "malformed_checkpoint"),
        (lambda r: r["log"]["proof"].__setitem__(0, "AAAA"), "inclusion_failed"),
    ],
)
def test_malformed_receipts_get_a_code_not_a_crash(log, change, code):
    receipt = copy.deepcopy(log.receipt(5))
    change(receipt)
    assert _code(receipt, log.vkey) == code


def test_the_package_parses_as_python_3_9():
    for path in sorted(PACKAGE.glob("*.py")):
        ast.parse(path.read_text(), filename=str(path), feature_version=(3, 9))
    imports = "".join(p.read_text() for p in PACKAGE.glob("*.py"))
    for portal in ("compensation", "django", "kamen_portal"):
        assert f"import {portal}" not in imports and f"from {portal}" not in imports
