"""kamen_verify as a witness: it keeps the last checkpoint it accepted,
accepts only checkpoints that extend it, and alarms on a fork or a
shrinking tree (issue 23, item 5 "Witnesses" (b))."""

import http.server
import threading
from urllib.parse import parse_qs, urlsplit

import pytest
from kamen_verify.__main__ import main
from kamen_verify.notes import WitnessSigner, parse_witness_key
from kamen_verify.witness import FetchError

from compensation import tlog
from compensation.ledger import canonical
from compensation.tlog_notes import (
    ALG_COSIGNATURE_V1,
    Signer,
    cosign_checkpoint,
    open_checkpoint,
)
from compensation.tlog_notes import (
    parse_verifier_key as portal_parse_verifier_key,
)
from kamen_verify import VerifyError, Witness, cosignature_line, parse_verifier_key
from kamen_verify import open_checkpoint as our_open_checkpoint

from .portal_log import PortalLog

URL = "https://portal.example.com"


class Portal:
    """What the witness sees: the checkpoint and consistency endpoints of
    ``log`` at ``size`` (swap ``log`` to show the witness another history)."""

    def __init__(self, log: PortalLog, size: int) -> None:
        self.log, self.size = log, size
        self.checkpoint_override: str | None = None
        self.requests: list[str] = []
        self.entry_override: dict[int, bytes] = {}  # leaf index -> data served instead

    def get(self, path_and_query: str) -> tuple[int, bytes]:
        self.requests.append(path_and_query)
        parts = urlsplit(path_and_query)
        if parts.path == "/ledger/log/checkpoint":
            return 200, (self.checkpoint_override or self.log.checkpoint(self.size)).encode()
        if parts.path == "/ledger/log/consistency":
            q = parse_qs(parts.query)
            old, new = int(q["old"][0]), int(q["new"][0])
            if not 0 <= old <= new <= self.size:
                return 400, b'{"error": "bad_size"}'
            return 200, self.log.consistency(old, new)
        if parts.path.startswith("/ledger/log/tile/"):
            tile = tlog.parse_tile_path(parts.path[len("/ledger/log/") :])
            start = tile.index * tlog.TILE_WIDTH
            if not tile.is_entries or start + tile.width > self.size:
                return 404, b"not found"
            leaves = [canonical(b) for b in self.log.bodies[start : start + tile.width]]
            leaves = [self.entry_override.get(start + i, leaf) for i, leaf in enumerate(leaves)]
            return 200, tlog.entry_bundle(leaves)
        return 404, b"not found"

    def fetch(self, url: str) -> bytes:
        assert url.startswith(URL)
        status, body = self.get(url[len(URL) :])
        if status != 200:
            raise FetchError(f"GET {url} answered HTTP {status}")
        return body


@pytest.fixture
def log():
    log = PortalLog()
    log.append(40)
    return log


def _witness(portal, log, tmp_path):
    return Witness(
        url=URL, key=parse_verifier_key(log.vkey), state=tmp_path / "state", fetch=portal.fetch
    )


def _alarm(witness):
    with pytest.raises(VerifyError) as caught:
        witness.run()
    return caught.value


def test_the_witness_accepts_growth_and_keeps_the_latest_checkpoint(log, tmp_path):
    portal = Portal(log, 5)
    witness = _witness(portal, log, tmp_path)
    first = witness.run()
    assert first.previous is None and "trusted on first use" in first.message
    assert (tmp_path / "state").read_text() == log.checkpoint(5)
    for size in (6, 8, 8, 13, 32, 33, 40):  # powers of two, equal sizes, odd sizes
        portal.size = size
        result = witness.run()
        assert result.checkpoint.size == size
        assert (tmp_path / "state").read_text() == log.checkpoint(size)
    assert "unchanged" in _witness(portal, log, tmp_path).run().message
    assert any(r.startswith("/ledger/log/consistency?old=33&new=40") for r in portal.requests)


def test_a_forked_history_is_refused_and_the_kept_checkpoint_stays(log, tmp_path):
    portal = Portal(log, 20)
    witness = _witness(portal, log, tmp_path)
    witness.run()
    kept = (tmp_path / "state").read_text()
    portal.log = log.fork(seq=7)  # entry 7 rewritten, signed with the same key
    portal.size = 30
    alarm = _alarm(witness)
    assert alarm.code == "consistency_failed" and "fork" in alarm.message
    assert (tmp_path / "state").read_text() == kept
    portal.size = 20  # the same size with another root is a fork too
    assert _alarm(witness).code == "consistency_failed"
    portal.log = log  # the honest log, grown, is still accepted afterwards
    portal.size = 30
    assert witness.run().checkpoint.size == 30


def test_with_entries_the_witness_recomputes_the_root_and_catches_a_rewritten_entry(tmp_path):
    log = PortalLog()
    log.append(600)  # two full entry bundles and a partial one
    portal = Portal(log, 300)
    witness = Witness(
        url=URL,
        key=parse_verifier_key(log.vkey),
        state=tmp_path / "state",
        fetch=portal.fetch,
        check_entries=True,
    )
    witness.run()
    portal.size = 600
    assert witness.run().checkpoint.size == 600
    assert "/ledger/log/tile/entries/002.p/88" in portal.requests
    rewritten = dict(log.bodies[400], minutes=1)
    portal.entry_override[400] = canonical(rewritten)  # the tree still has the old leaf
    alarm = _alarm(witness)
    assert alarm.code == "entries_mismatch" and "changed after it was logged" in alarm.message
    portal.entry_override[400] = b""  # a bundle one entry short
    portal.get = lambda path: (
        (200, b"\x00\x05abc") if "entries/001" in path else Portal.get(portal, path)
    )
    assert _alarm(witness).code == "entries_mismatch"


def test_a_shrinking_tree_is_refused(log, tmp_path):
    portal = Portal(log, 30)
    witness = _witness(portal, log, tmp_path)
    witness.run()
    portal.size = 29
    alarm = _alarm(witness)
    assert alarm.code == "shrinking_tree" and "from 30 to 29" in alarm.message
    assert (tmp_path / "state").read_text() == log.checkpoint(30)


def test_a_checkpoint_with_a_bad_or_foreign_signature_is_refused(log, tmp_path):
    portal = Portal(log, 10)
    witness = _witness(portal, log, tmp_path)
    witness.run()
    lines = log.checkpoint(12).split("\n")
    lines[1] = "13"
    portal.checkpoint_override = "\n".join(lines)
    assert _alarm(witness).code == "bad_signature"
    impostor = PortalLog(Signer.generate(log.origin))
    impostor.append(12)
    portal.checkpoint_override = impostor.checkpoint()
    assert _alarm(witness).code == "unknown_key"
    assert (tmp_path / "state").read_text() == log.checkpoint(10)


def test_a_state_file_the_key_did_not_sign_is_an_alarm(log, tmp_path):
    (tmp_path / "state").write_text(log.checkpoint(10).replace("\n10\n", "\n11\n"))
    assert _alarm(_witness(Portal(log, 12), log, tmp_path)).code == "bad_state"


def test_a_portal_that_will_not_prove_consistency_decides_nothing(log, tmp_path):
    portal = Portal(log, 10)
    witness = _witness(portal, log, tmp_path)
    witness.run()
    portal.size = 12
    portal.get = lambda path: (
        (400, b'{"error": "bad_size"}') if "consistency" in path else Portal.get(portal, path)
    )
    with pytest.raises(FetchError):
        witness.run()
    assert (tmp_path / "state").read_text() == log.checkpoint(10)


def test_the_cosignature_is_the_one_the_portal_reads_and_makes(log):
    portal_witness = Signer.generate("witness.example.org", ALG_COSIGNATURE_V1)
    ours = parse_witness_key(portal_witness.signer_key)
    assert ours.verifier.vkey == portal_witness.verifier.vkey
    note = log.checkpoint(20)
    opened = our_open_checkpoint(note, parse_verifier_key(log.vkey))
    line = cosignature_line(opened, ours, 1_765_000_000)
    cosigned = note + line
    portal_log_key = portal_parse_verifier_key(log.vkey)
    seen = open_checkpoint(cosigned, portal_log_key, witnesses=[portal_witness.verifier])
    assert seen.cosigned_at(portal_witness.verifier) == 1_765_000_000
    # Ed25519 is deterministic: byte for byte what the portal's code writes.
    assert cosigned == cosign_checkpoint(note, portal_log_key, portal_witness, 1_765_000_000)


def test_witness_keygen_writes_a_private_key_the_witness_reads(tmp_path, capsys):
    assert main(["witness-keygen", "witness.example.org", "--output", str(tmp_path / "w")]) == 0
    vkey = capsys.readouterr().out.strip()
    signer = parse_witness_key((tmp_path / "w").read_text())
    assert isinstance(signer, WitnessSigner) and signer.verifier.vkey == vkey
    assert (tmp_path / "w").stat().st_mode & 0o777 == 0o600
    assert main(["witness-keygen", "witness.example.org", "--output", str(tmp_path / "w")]) == 2


# --- the CLI over HTTP, against an in-process loopback server ------------------


@pytest.fixture
def served(log, monkeypatch):
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)  # loopback, never through a proxy
    portal = Portal(log, 10)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            status, body = portal.get(self.path)
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield portal, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_the_witness_command_accepts_cosigns_and_alarms_over_http(served, log, tmp_path, capsys):
    portal, url = served
    (tmp_path / "log.key").write_text(log.vkey + "\n")
    witness_key = Signer.generate("witness.example.org", ALG_COSIGNATURE_V1)
    (tmp_path / "w.key").write_text(witness_key.signer_key)
    args = ["witness", "--url", url, "--key", str(tmp_path / "log.key")]
    args += ["--state", str(tmp_path / "state")]
    assert main([*args, "--cosign-key", f"@{tmp_path / 'w.key'}"]) == 0
    out, err = capsys.readouterr()
    assert "OK: accepted checkpoint 10/" in err
    cosigned = log.checkpoint(10) + out
    seen = open_checkpoint(
        cosigned, portal_parse_verifier_key(log.vkey), witnesses=[witness_key.verifier]
    )
    assert seen.cosigned_at(witness_key.verifier) is not None

    portal.size = 25
    assert main(args) == 0
    assert "extends 10/" in capsys.readouterr().err

    portal.log, portal.size = log.fork(seq=3), 30
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("kamen-verify: ALARM consistency_failed:") and "\n" not in err

    portal.log, portal.size = log, 24
    assert main(args) == 1
    assert "ALARM shrinking_tree" in capsys.readouterr().err

    portal.size = 40
    portal.get = lambda path: (500, b"oops")
    assert main(args) == 3
    assert "could not check the log" in capsys.readouterr().err
    assert (tmp_path / "state").read_text() == log.checkpoint(25)
