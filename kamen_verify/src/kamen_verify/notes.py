"""C2SP signed notes, tlog-checkpoint and tlog-cosignature (cosignature/v1),
verified with Ed25519 (the package's one dependency, ``cryptography``).

- signed-note: the text (ending in a newline), a blank line, then lines
  ``— <key name> base64(4-byte key ID || signature)``. Key ID =
  SHA-256(name || 0x0A || type || public key)[:4]; verifier keys are
  ``<name>+<8 hex key ID>+base64(type || public key)``, type 0x01 Ed25519.
- tlog-checkpoint: origin line, decimal tree size, base64 root hash, then
  optional extension lines.
- tlog-cosignature: type 0x04; the signature is ``u64 big-endian timestamp
  || Ed25519("cosignature/v1\\ntime <timestamp>\\n" || checkpoint text)``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from .errors import VerifyError
from .merkle import HASH_SIZE

ALG_ED25519 = 0x01
ALG_COSIGNATURE_V1 = 0x04
SIGNATURE_PREFIX = "\u2014 "  # em dash, space
COSIGNATURE_HEADER = b"cosignature/v1\n"
MAX_NOTE_SIZE = 128 * 1024
MAX_TREE_SIZE = 2**63 - 1


def b64encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def b64decode(text: str, code: str, what: str) -> bytes:
    """Standard padded base64, and only its canonical spelling."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError, AttributeError):
        raise VerifyError(code, f"{what} is not valid base64") from None
    if b64encode(raw) != text:
        raise VerifyError(code, f"{what} is not canonical base64")
    return raw


def _valid_name(name: str) -> bool:
    return bool(name) and "+" not in name and not any(c.isspace() or ord(c) < 0x20 for c in name)


def key_id(name: str, alg: int, public_key: bytes) -> int:
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([alg]) + public_key).digest()
    return int.from_bytes(digest[:4], "big")


def _ed25519_ok(public_key: bytes, message: bytes, signature: bytes) -> bool:
    if len(signature) != 64:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass(frozen=True)
class Verifier:
    """A public key: the log's (type 0x01) or a witness's (type 0x04)."""

    name: str
    public_key: bytes
    alg: int = ALG_ED25519

    @property
    def key_id(self) -> int:
        return key_id(self.name, self.alg, self.public_key)

    @property
    def vkey(self) -> str:
        return f"{self.name}+{self.key_id:08x}+{b64encode(bytes([self.alg]) + self.public_key)}"


def parse_verifier_key(text: str) -> Verifier:
    """``<name>+<8 hex key ID>+<base64(type || key)>``, its key ID checked."""
    text = text.strip()
    name, _, rest = text.partition("+")
    hex_id, _, encoded = rest.partition("+")
    if not _valid_name(name) or len(hex_id) != 8 or not _is_hex(hex_id):
        raise VerifyError("bad_key", "a verifier key is <name>+<8 hex digits>+<base64 key>")
    raw = b64decode(encoded, "bad_key", "the verifier key")
    if len(raw) != 33 or raw[0] not in (ALG_ED25519, ALG_COSIGNATURE_V1):
        raise VerifyError("bad_key", "the verifier key is not an Ed25519 key")
    verifier = Verifier(name, raw[1:], raw[0])
    if verifier.key_id != int(hex_id, 16):
        raise VerifyError("bad_key", "the verifier key's ID does not match its name and key")
    return verifier


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in text)


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint whose signature by the log's key verified."""

    origin: str
    size: int
    root_hash: bytes
    text: str  # the note text the signature covers
    note: str  # the whole signed note

    @property
    def fingerprint(self) -> str:
        """Size and the first 16 characters of the base64 root, as receipts show it."""
        return f"{self.size}/{b64encode(self.root_hash)[:16]}"


@dataclass(frozen=True)
class _Signature:
    name: str
    key_id: int
    signature: bytes


def _split_note(note: str) -> tuple[str, list[_Signature]]:
    code = "malformed_checkpoint"
    if len(note.encode("utf-8", "surrogatepass")) > MAX_NOTE_SIZE:
        raise VerifyError(code, "the checkpoint is too long to be a signed note")
    if any(ord(c) < 0x20 and c != "\n" for c in note):
        raise VerifyError(code, "the checkpoint holds control characters")
    split = note.rfind("\n\n")
    if split < 0:
        raise VerifyError(code, "the checkpoint has no blank line before its signatures")
    text, block = note[: split + 1], note[split + 2 :]
    if not block.endswith("\n"):
        raise VerifyError(code, "the checkpoint's signature lines must end with a newline")
    signatures = []
    for line in block[:-1].split("\n"):
        if not line.startswith(SIGNATURE_PREFIX):
            raise VerifyError(code, "a signature line must start with an em dash")
        name, space, encoded = line[len(SIGNATURE_PREFIX) :].partition(" ")
        if not space or not _valid_name(name):
            raise VerifyError(code, "a signature line is '\u2014 <name> <base64>'")
        blob = b64decode(encoded, code, "a signature")
        if len(blob) < 5:
            raise VerifyError(code, "a signature is a key ID and at least one byte")
        signatures.append(_Signature(name, int.from_bytes(blob[:4], "big"), blob[4:]))
    return text, signatures


def _parse_body(text: str) -> tuple[str, int, bytes]:
    code = "malformed_checkpoint"
    lines = text[:-1].split("\n")
    if len(lines) < 3 or any(not line for line in lines):
        raise VerifyError(code, "a checkpoint has at least three non-empty lines")
    origin, size_line, root_line = lines[:3]
    if not (size_line.isascii() and size_line.isdigit()) or (
        len(size_line) > 1 and size_line[0] == "0"
    ):
        raise VerifyError(code, "the checkpoint's size is not a decimal without leading zeros")
    if len(size_line) > 19 or int(size_line) > MAX_TREE_SIZE:
        raise VerifyError(code, "the checkpoint's size is out of range")
    root = b64decode(root_line, code, "the checkpoint's root hash")
    if len(root) != HASH_SIZE:
        raise VerifyError(code, "the checkpoint's root hash is not 32 bytes")
    return origin, int(size_line), root


def open_checkpoint(note: str, key: Verifier, *, origin: str | None = None) -> Checkpoint:
    """The checkpoint in signed note ``note``, if ``key`` (the log's key)
    signed it and its origin is ``origin`` (default: the key's name).

    Refusals: ``malformed_checkpoint``, ``unknown_key`` (not signed by this
    key), ``bad_signature`` (signed with this key's name and ID, but the
    signature does not verify: the text was edited), ``wrong_origin``."""
    if not isinstance(note, str):
        raise VerifyError("malformed_checkpoint", "the checkpoint is not text")
    if key.alg != ALG_ED25519:
        raise VerifyError("bad_key", "a log signs checkpoints with an Ed25519 (type 0x01) key")
    text, signatures = _split_note(note)
    mine = [s for s in signatures if (s.name, s.key_id) == (key.name, key.key_id)]
    if not mine:
        signed_by = ", ".join(f"{s.name}+{s.key_id:08x}" for s in signatures)
        raise VerifyError(
            "unknown_key",
            f"the checkpoint is not signed by {key.name}+{key.key_id:08x} (signed by {signed_by})",
        )
    if len(mine) > 1:
        raise VerifyError("malformed_checkpoint", "the log's key signed the checkpoint twice")
    if not _ed25519_ok(key.public_key, text.encode(), mine[0].signature):
        raise VerifyError(
            "bad_signature",
            f"the signature of {key.name}+{key.key_id:08x} does not verify: "
            "the checkpoint was changed after it was signed",
        )
    found_origin, size, root = _parse_body(text)
    expected = key.name if origin is None else origin
    if found_origin != expected:
        raise VerifyError(
            "wrong_origin", f"the checkpoint is for {found_origin[:100]!r}, not {expected!r}"
        )
    return Checkpoint(found_origin, size, root, text, note)


# --- witness cosignatures ------------------------------------------------------


@dataclass(frozen=True)
class WitnessSigner:
    """A witness's private cosignature/v1 key."""

    name: str
    seed: bytes = field(repr=False)

    @classmethod
    def generate(cls, name: str) -> WitnessSigner:
        if not _valid_name(name):
            raise VerifyError("bad_key", f"{name[:100]!r} is not a valid key name")
        key = Ed25519PrivateKey.generate()
        return cls(name, key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()))

    @property
    def verifier(self) -> Verifier:
        key = Ed25519PrivateKey.from_private_bytes(self.seed)
        public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return Verifier(self.name, public, ALG_COSIGNATURE_V1)

    @property
    def signer_key(self) -> str:
        encoded = b64encode(bytes([ALG_COSIGNATURE_V1]) + self.seed)
        return f"PRIVATE+KEY+{self.name}+{self.verifier.key_id:08x}+{encoded}"

    def cosign(self, text: str, timestamp: int) -> bytes:
        """``timestamp || Ed25519 signature`` (without the key ID)."""
        if not 0 <= timestamp <= 2**63 - 1:
            raise VerifyError("bad_timestamp", "a cosignature needs a POSIX timestamp")
        message = COSIGNATURE_HEADER + b"time %d\n" % timestamp + text.encode()
        key = Ed25519PrivateKey.from_private_bytes(self.seed)
        return timestamp.to_bytes(8, "big") + key.sign(message)


def parse_witness_key(text: str) -> WitnessSigner:
    """``PRIVATE+KEY+<name>+<8 hex key ID>+base64(0x04 || seed)``."""
    parts = text.strip().split("+", 4)
    if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
        raise VerifyError("bad_key", "a witness key is PRIVATE+KEY+<name>+<key ID>+<key>")
    _, _, name, hex_id, encoded = parts
    if not _valid_name(name) or len(hex_id) != 8 or not _is_hex(hex_id):
        raise VerifyError("bad_key", "a witness key is PRIVATE+KEY+<name>+<8 hex>+<key>")
    raw = b64decode(encoded, "bad_key", "the witness key")
    if len(raw) != 33 or raw[0] != ALG_COSIGNATURE_V1:
        raise VerifyError("bad_key", "a witness key is a cosignature/v1 (type 0x04) Ed25519 key")
    signer = WitnessSigner(name, raw[1:])
    if signer.verifier.key_id != int(hex_id, 16):
        raise VerifyError("bad_key", "the witness key's ID does not match its name and key")
    return signer


def cosignature_line(checkpoint: Checkpoint, witness: WitnessSigner, timestamp: int) -> str:
    """The signed-note line a witness adds to ``checkpoint``, with its newline."""
    blob = witness.verifier.key_id.to_bytes(4, "big") + witness.cosign(checkpoint.text, timestamp)
    return f"{SIGNATURE_PREFIX}{witness.name} {b64encode(blob)}\n"


def cosigned_note(
    checkpoint: Checkpoint, log: Verifier, witness: WitnessSigner, timestamp: int
) -> str:
    """The checkpoint's note as the ``log`` key signed it, with ``witness``'s
    cosignature as the one other line: what a witness sends back to the log
    (C2SP tlog-witness), vouching for itself only, not for other witnesses'
    lines it was served."""
    text, signatures = _split_note(checkpoint.note)
    logs = [s for s in signatures if (s.name, s.key_id) == (log.name, log.key_id)]
    lines = "".join(
        f"{SIGNATURE_PREFIX}{s.name} {b64encode(s.key_id.to_bytes(4, 'big') + s.signature)}\n"
        for s in logs
    )
    return text + "\n" + lines + cosignature_line(checkpoint, witness, timestamp)
