"""Signed notes, checkpoints and witness cosignatures of the transparency log:
pure, no Django.

What leaves the portal to vouch for the ledger's Merkle tree
(``compensation.tlog``): a checkpoint (the tree's size and root) signed with
the log's Ed25519 key, in formats that other people's tools read.

Formats followed (checked against the texts, not from memory):

- C2SP ``signed-note`` (c2sp.org/signed-note, v1.0.0 as the C2SP repository
  has it at commit 0552876): a UTF-8 text ending in a newline, a blank line,
  then signature lines ``— <key name> base64(key ID || signature)``; no
  control characters but newline; key names non-empty without Unicode spaces
  or ``+``; unknown keys ignored, a known key's bad signature rejects the
  note, a note without a verified known signature is rejected. Ed25519 key ID
  ``SHA-256(name || 0x0A || 0x01 || public key)[:4]``, big-endian. Verifier
  keys ``<name>+<8 hex key ID>+<base64(type byte || public key)>`` and signer
  keys ``PRIVATE+KEY+<name>+<8 hex>+<base64(0x01 || seed)>`` as Go's
  ``golang.org/x/mod/sumdb/note`` (v0.7.0) reads them.
- C2SP ``tlog-checkpoint`` (c2sp.org/tlog-checkpoint, commit 2793893): the
  note text is the origin line, the tree size in decimal without leading
  zeros, the base64 root hash, then optional non-empty extension lines.
- C2SP ``tlog-cosignature`` (c2sp.org/tlog-cosignature, commit 01194db), the
  Ed25519 ``cosignature/v1`` type only: key ID with type byte 0x04, the
  signature is ``u64 big-endian timestamp || Ed25519 signature`` over
  ``"cosignature/v1\\ntime <timestamp>\\n" || checkpoint text``.

Every refusal is a ``NoteError`` with a stable ``code``; hostile input (too
long, not UTF-8, bad base64, unknown or duplicate keys, forged signatures)
gets one and never another exception.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Sequence
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

from .tlog import HASH_SIZE

ALG_ED25519 = 0x01
ALG_COSIGNATURE_V1 = 0x04  # timestamped Ed25519 witness cosignatures

# The spec asks verifiers to accept at least 16 signatures and warns that a
# post-quantum one can be nearly 5 kB; a checkpoint of ours is ~250 bytes.
MAX_NOTE_SIZE = 128 * 1024
MAX_SIGNATURES = 100
MAX_TIMESTAMP = 2**63 - 1
MAX_TREE_SIZE = 2**63 - 1

SIGNATURE_PREFIX = "— "  # em dash, space
COSIGNATURE_HEADER = b"cosignature/v1\n"


class NoteError(ValueError):
    """A refused note, key or checkpoint, with a stable machine-readable ``code``."""

    def __init__(self, code: str, message: str, *, note: OpenedNote | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.note = note  # for "no_known_signature": what was parsed


def _b64encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _b64decode(text: str, what: str) -> bytes:
    """Standard base64 (RFC 4648 §4), padded, and only its canonical spelling."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise NoteError("bad_base64", f"{what} is not valid base64") from None
    if _b64encode(raw) != text:
        raise NoteError("bad_base64", f"{what} is not canonical base64")
    return raw


def is_valid_key_name(name: str) -> bool:
    """Non-empty, no Unicode spaces, no plus, no control characters."""
    return (
        bool(name)
        and "+" not in name
        and not any(c.isspace() or ord(c) < 0x20 or c == "\x7f" for c in name)
    )


def key_id(name: str, alg: int, public_key: bytes) -> int:
    """SHA-256(name || 0x0A || type byte || public key), first 4 bytes big-endian."""
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([alg]) + public_key).digest()
    return int.from_bytes(digest[:4], "big")


# --- keys ---------------------------------------------------------------------


@dataclass(frozen=True)
class Verifier:
    """A public key that checks note signatures of one (name, key ID)."""

    name: str
    public_key: bytes  # 32-byte Ed25519 public key
    alg: int = ALG_ED25519

    def __post_init__(self) -> None:
        if not is_valid_key_name(self.name):
            raise NoteError("bad_key_name", f"{self.name[:100]!r} is not a valid key name")
        if len(self.public_key) != 32:
            raise NoteError("bad_key", "an Ed25519 public key is 32 bytes")
        if self.alg not in (ALG_ED25519, ALG_COSIGNATURE_V1):
            raise NoteError("unknown_algorithm", f"signature type 0x{self.alg:02x} is unknown")

    @property
    def key_id(self) -> int:
        return key_id(self.name, self.alg, self.public_key)

    @property
    def vkey(self) -> str:
        """The verifier key in note format: ``<name>+<hex key ID>+<base64>``."""
        encoded = _b64encode(bytes([self.alg]) + self.public_key)
        return f"{self.name}+{self.key_id:08x}+{encoded}"

    def _ed25519_ok(self, message: bytes, signature: bytes) -> bool:
        if len(signature) != 64:
            return False
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except InvalidSignature:
            return False
        return True

    def verify(self, text: bytes, signature: bytes) -> bool:
        """Whether ``signature`` (without the 4-byte key ID) signs note ``text``."""
        if self.alg == ALG_COSIGNATURE_V1:
            return cosignature_timestamp(self, text, signature) is not None
        return self._ed25519_ok(text, signature)


def cosignature_timestamp(verifier: Verifier, text: bytes, signature: bytes) -> int | None:
    """The timestamp of a valid ``cosignature/v1`` over checkpoint ``text``, or None."""
    if verifier.alg != ALG_COSIGNATURE_V1 or len(signature) != 8 + 64:
        return None
    timestamp = int.from_bytes(signature[:8], "big")
    if timestamp > MAX_TIMESTAMP:
        return None
    message = _cosigned_message(text, timestamp)
    return timestamp if verifier._ed25519_ok(message, signature[8:]) else None


def _cosigned_message(text: bytes, timestamp: int) -> bytes:
    return COSIGNATURE_HEADER + b"time %d\n" % timestamp + text


def parse_verifier_key(vkey: str) -> Verifier:
    """A verifier from ``<name>+<8 hex key ID>+<base64(type || key)>``, checking
    that the key ID is the one the name and key hash to."""
    vkey = vkey.strip()
    name, _, rest = vkey.partition("+")
    hex_id, _, encoded = rest.partition("+")
    if len(hex_id) != 8 or not all(c in "0123456789abcdefABCDEF" for c in hex_id):
        raise NoteError("bad_key", "a verifier key is <name>+<8 hex digits>+<base64 key>")
    raw = _b64decode(encoded, "the verifier key")
    if not raw:
        raise NoteError("bad_key", "the verifier key holds no key")
    verifier = Verifier(name, raw[1:], raw[0]) if raw[0] in (1, 4) else None
    if verifier is None:
        raise NoteError("unknown_algorithm", f"signature type 0x{raw[0]:02x} is unknown")
    if verifier.key_id != int(hex_id, 16):
        raise NoteError("bad_key_id", "the key ID does not match the name and key")
    return verifier


@dataclass(frozen=True)
class Signer:
    """A private Ed25519 key that signs notes as ``name`` (for a witness, with
    ``alg=ALG_COSIGNATURE_V1``, timestamped cosignatures)."""

    name: str
    seed: bytes = field(repr=False)  # the 32-byte RFC 8032 private key
    alg: int = ALG_ED25519

    def __post_init__(self) -> None:
        if not is_valid_key_name(self.name):
            raise NoteError("bad_key_name", f"{self.name[:100]!r} is not a valid key name")
        if len(self.seed) != 32:
            raise NoteError("bad_key", "an Ed25519 private key is 32 bytes")

    @classmethod
    def generate(cls, name: str, alg: int = ALG_ED25519) -> Signer:
        key = Ed25519PrivateKey.generate()
        return cls(name, key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()), alg)

    @property
    def _key(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(self.seed)

    @property
    def verifier(self) -> Verifier:
        public = self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return Verifier(self.name, public, self.alg)

    @property
    def key_id(self) -> int:
        return self.verifier.key_id

    @property
    def signer_key(self) -> str:
        """``PRIVATE+KEY+<name>+<hex key ID>+<base64(type || seed)>``: secret."""
        encoded = _b64encode(bytes([self.alg]) + self.seed)
        return f"PRIVATE+KEY+{self.name}+{self.key_id:08x}+{encoded}"

    def sign(self, text: bytes, *, timestamp: int | None = None) -> bytes:
        """The signature of note ``text`` (without the key ID prefix)."""
        if self.alg == ALG_COSIGNATURE_V1:
            if timestamp is None or not 0 <= timestamp <= MAX_TIMESTAMP:
                raise NoteError("bad_timestamp", "a cosignature needs a POSIX timestamp")
            message = _cosigned_message(text, timestamp)
            return timestamp.to_bytes(8, "big") + self._key.sign(message)
        return self._key.sign(text)


def parse_signer_key(skey: str) -> Signer:
    """A signer from ``PRIVATE+KEY+<name>+<8 hex>+<base64(type || seed)>``."""
    parts = skey.strip().split("+", 4)
    if len(parts) != 5 or parts[0] != "PRIVATE" or parts[1] != "KEY":
        raise NoteError("bad_key", "a signer key is PRIVATE+KEY+<name>+<key ID>+<key>")
    _, _, name, hex_id, encoded = parts
    if len(hex_id) != 8 or not all(c in "0123456789abcdefABCDEF" for c in hex_id):
        raise NoteError("bad_key", "a signer key's key ID is 8 hex digits")
    raw = _b64decode(encoded, "the signer key")
    if not raw or raw[0] not in (ALG_ED25519, ALG_COSIGNATURE_V1):
        raise NoteError("unknown_algorithm", "the signer key's type is unknown")
    signer = Signer(name, raw[1:], raw[0])
    if signer.key_id != int(hex_id, 16):
        raise NoteError("bad_key_id", "the key ID does not match the name and key")
    return signer


# --- notes --------------------------------------------------------------------


@dataclass(frozen=True)
class Signature:
    name: str
    key_id: int
    signature: bytes  # without the key ID

    @property
    def line(self) -> str:
        encoded = _b64encode(self.key_id.to_bytes(4, "big") + self.signature)
        return f"{SIGNATURE_PREFIX}{self.name} {encoded}\n"


@dataclass(frozen=True)
class OpenedNote:
    """A note's text, the signatures a known key verified, and the others."""

    text: str
    verified: tuple[Signature, ...]
    unverified: tuple[Signature, ...]

    def verified_by(self, verifier: Verifier) -> Signature | None:
        for sig in self.verified:
            if (sig.name, sig.key_id) == (verifier.name, verifier.key_id):
                return sig
        return None


def sign_note(
    text: str,
    signers: Sequence[Signer],
    *,
    existing: Iterable[Signature] = (),
    timestamp: int | None = None,
) -> str:
    """The signed note: ``text`` (ending in a newline), a blank line, the
    ``existing`` signatures not replaced by a signer's key, then the new ones."""
    if not text.endswith("\n"):
        raise NoteError("malformed", "a note's text must end with a newline")
    _check_text(text)
    raw = text.encode()
    new = [Signature(s.name, s.key_id, s.sign(raw, timestamp=timestamp)) for s in signers]
    replaced = {(s.name, s.key_id) for s in new}
    kept = [s for s in existing if (s.name, s.key_id) not in replaced]
    return text + "\n" + "".join(s.line for s in [*kept, *new])


def _check_text(text: str) -> None:
    for c in text:
        if ord(c) < 0x20 and c != "\n":
            raise NoteError("control_character", "a note must not hold control characters")


def open_note(message: str | bytes, verifiers: Iterable[Verifier]) -> OpenedNote:
    """Parse a signed note and check its signatures against the known keys.

    Signatures of unknown keys are kept unverified; a known key's signature
    must verify (``invalid_signature``) and appear once
    (``duplicate_signature``); at least one must (``no_known_signature``)."""
    known: dict[tuple[str, int], Verifier] = {}
    for v in verifiers:
        if (v.name, v.key_id) in known and known[(v.name, v.key_id)] != v:
            raise NoteError("ambiguous_key", f"two known keys are {v.name}+{v.key_id:08x}")
        known[(v.name, v.key_id)] = v
    raw = message.encode() if isinstance(message, str) else bytes(message)
    if len(raw) > MAX_NOTE_SIZE:
        raise NoteError("note_too_long", f"a note may be at most {MAX_NOTE_SIZE} bytes")
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise NoteError("not_utf8", "a note must be UTF-8") from None
    _check_text(decoded)
    split = decoded.rfind("\n\n")
    if split < 0:
        raise NoteError("malformed", "a note needs a blank line before its signatures")
    text, block = decoded[: split + 1], decoded[split + 2 :]
    if not block or not block.endswith("\n"):
        raise NoteError("malformed", "a note's signature lines must end with a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError("too_many_signatures", f"a note may carry {MAX_SIGNATURES} signatures")
    verified: list[Signature] = []
    unverified: list[Signature] = []
    seen: set[tuple[str, int]] = set()
    text_bytes = text.encode()
    for line in lines:
        if not line.startswith(SIGNATURE_PREFIX):
            raise NoteError("bad_signature_line", "a signature line starts with an em dash")
        name, space, encoded = line[len(SIGNATURE_PREFIX) :].partition(" ")
        if not space or not is_valid_key_name(name):
            raise NoteError("bad_signature_line", "a signature line is '— <name> <base64>'")
        blob = _b64decode(encoded, "a signature")
        if len(blob) < 5:
            raise NoteError("bad_signature_line", "a signature is a key ID and at least a byte")
        sig = Signature(name, int.from_bytes(blob[:4], "big"), blob[4:])
        verifier = known.get((sig.name, sig.key_id))
        if verifier is None:
            if sig not in unverified:
                unverified.append(sig)
            continue
        if (sig.name, sig.key_id) in seen:
            raise NoteError(
                "duplicate_signature", f"{sig.name}+{sig.key_id:08x} signed the note twice"
            )
        seen.add((sig.name, sig.key_id))
        if not verifier.verify(text_bytes, sig.signature):
            raise NoteError(
                "invalid_signature", f"the signature of {sig.name}+{sig.key_id:08x} is invalid"
            )
        verified.append(sig)
    note = OpenedNote(text, tuple(verified), tuple(unverified))
    if not verified:
        raise NoteError("no_known_signature", "no known key signed the note", note=note)
    return note


# --- checkpoints ----------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin:
            raise NoteError("bad_checkpoint", "a checkpoint's origin is one non-empty line")
        if not 0 <= self.size <= MAX_TREE_SIZE:
            raise NoteError("bad_checkpoint", "a checkpoint's size is out of range")
        if len(self.root_hash) != HASH_SIZE:
            raise NoteError("bad_checkpoint", "a checkpoint's root hash is 32 bytes")
        for line in self.extensions:
            if not line or "\n" in line:
                raise NoteError("bad_checkpoint", "an extension line is one non-empty line")
        _check_text(self.body)

    @property
    def body(self) -> str:
        """The note text: origin, size, base64 root, extension lines."""
        lines = [self.origin, str(self.size), _b64encode(self.root_hash), *self.extensions]
        return "".join(f"{line}\n" for line in lines)


def parse_checkpoint(text: str) -> Checkpoint:
    """A checkpoint from its note text (C2SP tlog-checkpoint), strictly."""
    if not text.endswith("\n"):
        raise NoteError("bad_checkpoint", "a checkpoint's text ends with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3 or any(not line for line in lines):
        raise NoteError("bad_checkpoint", "a checkpoint has at least three non-empty lines")
    origin, size_line, root_line, *extensions = lines
    if not (size_line.isascii() and size_line.isdigit()) or (
        len(size_line) > 1 and size_line[0] == "0"
    ):
        raise NoteError("bad_checkpoint", "a checkpoint's size is a decimal without leading zeros")
    if len(size_line) > 19 or int(size_line) > MAX_TREE_SIZE:
        raise NoteError("bad_checkpoint", "a checkpoint's size is out of range")
    try:
        root = _b64decode(root_line, "the root hash")
    except NoteError:
        raise NoteError("bad_checkpoint", "a checkpoint's root hash is base64") from None
    return Checkpoint(origin, int(size_line), root, tuple(extensions))


def sign_checkpoint(checkpoint: Checkpoint, signer: Signer) -> str:
    """The signed checkpoint note, as served at ``/checkpoint``."""
    return sign_note(checkpoint.body, [signer])


@dataclass(frozen=True)
class SignedCheckpoint:
    checkpoint: Checkpoint
    note: OpenedNote

    def cosigned_at(self, witness: Verifier) -> int | None:
        """When ``witness`` cosigned this checkpoint (None if it did not)."""
        sig = self.note.verified_by(witness)
        if sig is None:
            return None
        return cosignature_timestamp(witness, self.note.text.encode(), sig.signature)


def open_checkpoint(
    message: str | bytes,
    log: Verifier,
    *,
    origin: str | None = None,
    witnesses: Iterable[Verifier] = (),
) -> SignedCheckpoint:
    """A checkpoint signed by the ``log`` key (and maybe cosigned by known
    ``witnesses``), whose origin is ``origin`` (default: the log key's name)."""
    if log.alg != ALG_ED25519:
        raise NoteError("bad_key", "a log signs checkpoints with an Ed25519 key")
    note = open_note(message, [log, *witnesses])
    if note.verified_by(log) is None:
        raise NoteError(
            "no_known_signature", "the log's key did not sign the checkpoint", note=note
        )
    checkpoint = parse_checkpoint(note.text)
    expected = log.name if origin is None else origin
    if checkpoint.origin != expected:
        raise NoteError(
            "wrong_origin", f"the checkpoint is for {checkpoint.origin[:100]!r}, not {expected!r}"
        )
    return SignedCheckpoint(checkpoint, note)


def cosign_checkpoint(
    message: str | bytes,
    log: Verifier,
    witness: Signer,
    timestamp: int,
    *,
    origin: str | None = None,
) -> str:
    """Add ``witness``'s cosignature to a checkpoint the ``log`` signed; the
    caller (a witness) must already have checked it is consistent with every
    checkpoint it accepted before."""
    if witness.alg != ALG_COSIGNATURE_V1:
        raise NoteError("bad_key", "a witness cosigns with a cosignature/v1 key")
    opened = open_checkpoint(message, log, origin=origin)
    existing = [*opened.note.verified, *opened.note.unverified]
    return sign_note(opened.note.text, [witness], existing=existing, timestamp=timestamp)
