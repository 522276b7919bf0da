"""A witness of the portal's log: it keeps the last checkpoint it accepted
and accepts a new one only if the log's key signed it and it extends the
kept one (RFC 9162 consistency proof). A shrinking tree or a failed proof is
a fork: the portal showed two different histories."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .errors import VerifyError
from .merkle import leaf_hash, root_from_leaf_hashes, verify_consistency
from .notes import Checkpoint, Verifier, b64decode, open_checkpoint

Fetch = Callable[[str], bytes]
USER_AGENT = "kamen-verify/1.0 (witness)"
MAX_RESPONSE = 1024 * 1024
TILE_WIDTH = 256  # C2SP tlog-tiles: entries per entry bundle


class FetchError(Exception):
    """The portal could not be asked (network, HTTP status): not a verdict."""


def http_fetch(url: str, *, timeout: float = 30.0) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            body = response.read(MAX_RESPONSE + 1)
    except urllib.error.HTTPError as exc:
        raise FetchError(f"GET {url} answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise FetchError(f"GET {url} failed: {reason}") from None
    if len(body) > MAX_RESPONSE:
        raise FetchError(f"GET {url} answered more than {MAX_RESPONSE} bytes")
    return body


class SubmitRefused(Exception):
    """The portal answered the cosignature with a refusal (HTTP 4xx): ``code``
    and ``detail`` as it said them (e.g. ``unknown_witness``: the operator has
    not added this witness's key)."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(f"HTTP {status} {code}: {detail}")
        self.status, self.code, self.detail = status, code, detail


def http_submit(url: str, note: str, *, timeout: float = 30.0) -> dict:
    """POST a cosigned checkpoint (text/plain) to ``<log>/cosignature``; the
    portal's JSON answer. ``SubmitRefused`` on a 4xx, ``FetchError`` when the
    portal could not be asked (network, 5xx, not JSON)."""
    request = urllib.request.Request(  # noqa: S310
        url,
        data=note.encode("utf-8"),
        method="POST",
        headers={"User-Agent": USER_AGENT, "Content-Type": "text/plain; charset=utf-8"},
    )
    status = 200
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            body = response.read(MAX_RESPONSE + 1)
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read(MAX_RESPONSE + 1)
        if not 400 <= status < 500:
            raise FetchError(f"POST {url} answered HTTP {status}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise FetchError(f"POST {url} failed: {reason}") from None
    try:
        answer = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise FetchError(f"POST {url} answered HTTP {status} without JSON") from None
    if not isinstance(answer, dict):
        raise FetchError(f"POST {url} answered HTTP {status} with JSON that is not an object")
    if status != 200:
        raise SubmitRefused(status, str(answer.get("error", "")), str(answer.get("detail", "")))
    return answer


@dataclass(frozen=True)
class WitnessResult:
    checkpoint: Checkpoint
    previous: Checkpoint | None

    @property
    def message(self) -> str:
        new = self.checkpoint.fingerprint
        if self.previous is None:
            return f"accepted checkpoint {new} (first one: trusted on first use)"
        if self.previous.size == self.checkpoint.size:
            return f"checkpoint {new} unchanged"
        return f"accepted checkpoint {new}: it extends {self.previous.fingerprint}"


class Witness:
    """``url`` is the portal's base (``https://portal.example.com``); the log
    is under ``<url>/ledger/log``. ``state`` is the file holding the last
    accepted signed checkpoint, as served (plain text)."""

    def __init__(
        self,
        *,
        url: str,
        key: Verifier,
        state: Path,
        origin: str | None = None,
        fetch: Fetch | None = None,
        check_entries: bool = False,
    ) -> None:
        base = url.rstrip("/")
        self.log_url = base if base.endswith("/ledger/log") else base + "/ledger/log"
        self.key = key
        self.state = Path(state)
        self.origin = origin
        self.fetch = fetch or http_fetch
        self.check_entries = check_entries

    def load(self) -> Checkpoint | None:
        """The kept checkpoint (None before the first run); it must still
        verify with the key, or the state file is not ours to trust."""
        try:
            note = self.state.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise VerifyError(
                "bad_state", f"cannot read the state file {self.state}: {exc}"
            ) from None
        try:
            return open_checkpoint(note, self.key, origin=self.origin)
        except VerifyError as exc:
            raise VerifyError(
                "bad_state", f"the kept checkpoint in {self.state} does not verify: {exc}"
            ) from None

    def _store(self, checkpoint: Checkpoint) -> None:
        """Replace the state file atomically (a crash keeps the old one)."""
        directory = self.state.parent
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=str(directory), prefix=".kamen-verify-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
                f.write(checkpoint.note)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.state)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def _consistency(self, old: int, new: int) -> list[bytes]:
        query = urllib.parse.urlencode({"old": old, "new": new})
        raw = self.fetch(f"{self.log_url}/consistency?{query}")
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise FetchError("the consistency proof is not JSON") from None
        if not isinstance(body, dict) or (body.get("old"), body.get("new")) != (old, new):
            raise FetchError(f"the portal did not answer with a proof from {old} to {new}")
        proof = body.get("proof")
        if not isinstance(proof, list) or not all(isinstance(h, str) for h in proof):
            raise FetchError("the consistency proof is not a list of base64 hashes")
        return [b64decode(h, "consistency_failed", "a consistency proof hash") for h in proof]

    def _check_entries(self, checkpoint: Checkpoint) -> None:
        """Fetch every entry bundle (C2SP tlog-tiles ``tile/entries/...``) and
        recompute the checkpoint's root from the entries themselves: an entry
        rewritten after it was logged no longer hashes to its leaf."""
        leaves: list[bytes] = []
        for n in range((checkpoint.size + TILE_WIDTH - 1) // TILE_WIDTH):
            width = min(TILE_WIDTH, checkpoint.size - n * TILE_WIDTH)
            path = f"tile/entries/{_tile_index(n)}" + ("" if width == TILE_WIDTH else f".p/{width}")
            entries = _parse_bundle(self.fetch(f"{self.log_url}/{path}"), width, path)
            leaves.extend(leaf_hash(e) for e in entries)
        if root_from_leaf_hashes(leaves) != checkpoint.root_hash:
            raise VerifyError(
                "entries_mismatch",
                f"the entries served do not hash to the root of checkpoint "
                f"{checkpoint.fingerprint}: an entry was changed after it was logged",
            )

    def run(self) -> WitnessResult:
        """Fetch, check and keep the latest checkpoint. Raises ``VerifyError``
        (an alarm: ``bad_signature``, ``unknown_key``, ``wrong_origin``,
        ``malformed_checkpoint``, ``shrinking_tree``, ``consistency_failed``,
        ``bad_state``, with ``check_entries`` also ``entries_mismatch``) or ``FetchError``; the state file is changed only on
        acceptance."""
        old = self.load()
        raw = self.fetch(f"{self.log_url}/checkpoint")
        try:
            note = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise VerifyError("malformed_checkpoint", "the checkpoint is not UTF-8") from None
        new = open_checkpoint(note, self.key, origin=self.origin)
        if old is not None:
            if new.size < old.size:
                raise VerifyError(
                    "shrinking_tree",
                    f"the log shrank from {old.size} to {new.size} leaves: "
                    f"history was rewritten (kept {old.fingerprint}, served {new.fingerprint})",
                )
            proof = self._consistency(old.size, new.size) if new.size > old.size else []
            try:
                verify_consistency(
                    proof,
                    old_size=old.size,
                    old_root=old.root_hash,
                    new_size=new.size,
                    new_root=new.root_hash,
                )
            except VerifyError as exc:
                raise VerifyError(
                    "consistency_failed",
                    f"checkpoint {new.fingerprint} does not extend the kept {old.fingerprint} "
                    f"(a fork): {exc.message}",
                ) from None
        if self.check_entries:
            self._check_entries(new)
        if old is None or old.note != new.note:
            self._store(new)
        return WitnessResult(new, old)


def _tile_index(n: int) -> str:
    """C2SP tlog-tiles ``<N>``: 3-digit path elements, all but the last ``x``-prefixed."""
    parts = [f"{n % 1000:03d}"]
    n //= 1000
    while n:
        parts.append(f"x{n % 1000:03d}")
        n //= 1000
    return "/".join(reversed(parts))


def _parse_bundle(data: bytes, width: int, path: str) -> list[bytes]:
    """An entry bundle: each entry prefixed by its big-endian uint16 length."""
    entries, at = [], 0
    while at < len(data):
        if at + 2 > len(data):
            raise VerifyError("entries_mismatch", f"{path} ends inside a length prefix")
        length = int.from_bytes(data[at : at + 2], "big")
        at += 2
        if at + length > len(data):
            raise VerifyError("entries_mismatch", f"{path} ends inside an entry")
        entries.append(data[at : at + length])
        at += length
    if len(entries) != width:
        raise VerifyError("entries_mismatch", f"{path} holds {len(entries)} entries, not {width}")
    return entries
