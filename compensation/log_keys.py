"""The transparency log's origin and its Ed25519 signing key.

The key lives outside the database, so whoever can rewrite ledger rows
cannot also re-sign checkpoints: ``LEDGER_LOG_SIGNING_KEY`` (the signer key
text, ``PRIVATE+KEY+<name>+<id>+<base64>``, e.g. from a secret store) or the
file ``LEDGER_LOG_KEY_FILE`` (``manage.py ledger_keygen`` writes one). With
neither set, the embedded default makes ``ledger-log.key`` under
``DATA_DIR`` on first use, readable by its owner only.

Rotation: keep the old verifier key in ``LEDGER_LOG_PREVIOUS_KEYS`` so the
checkpoints it signed still verify (docs/integration.md, "The ledger's
transparency log").
"""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .tlog_notes import (
    ALG_COSIGNATURE_V1,
    NoteError,
    Signer,
    Verifier,
    parse_signer_key,
    parse_verifier_key,
)

KEY_FILE_NAME = "ledger-log.key"


def default_origin() -> str:
    """The origin a new key is named for: the setting, else ``<site host>/ledger``."""
    configured = getattr(settings, "LEDGER_LOG_ORIGIN", "")
    if configured:
        return configured
    host = urlsplit(settings.PORTAL_BASE_URL).netloc or "localhost"
    return f"{host}/ledger"


def log_origin() -> str:
    """The checkpoint's origin line: the setting, else the signing key's name.

    The key keeps the origin it was made for, so serving on another port or
    host later (``PORTAL_BASE_URL`` follows ``PORT``) does not split what the
    checkpoints say from the key that signs them: verifiers and witnesses
    expect the two to match."""
    configured = getattr(settings, "LEDGER_LOG_ORIGIN", "")
    return configured or log_signer().name


def key_file_path() -> tuple[Path, bool]:
    """The key file, and whether it was configured (else the embedded default)."""
    configured = getattr(settings, "LEDGER_LOG_KEY_FILE", "")
    if configured:
        return Path(configured), True
    return Path(settings.DATA_DIR) / KEY_FILE_NAME, False


def write_key_file(path: Path, signer: Signer, *, overwrite: bool = False) -> None:
    """Write ``signer``'s key to ``path`` with mode 0600, atomically refusing
    an existing file unless ``overwrite``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written whole under a temporary name, then linked into place: a process
    # that finds the file (web, worker and beat start together) never reads
    # it half written. os.link refuses an existing name, os.replace does not.
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (signer.signer_key + "\n").encode())
        os.fsync(fd)
        os.close(fd)
        fd = -1
        if overwrite:
            os.replace(temporary, path)
        else:
            os.link(temporary, path)
    finally:
        if fd != -1:
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def _read_key(text: str, where: str) -> Signer:
    try:
        signer = parse_signer_key(text)
    except NoteError as exc:
        raise ImproperlyConfigured(
            f"{where} does not hold a ledger log signer key: {exc}"
        ) from None
    if signer.alg != 0x01:
        raise ImproperlyConfigured(f"{where} holds a witness key, not a log key")
    return signer


@functools.cache
def _signer(env_key: str, path: str, configured: bool, origin: str) -> Signer:
    if env_key:
        return _read_key(env_key, "LEDGER_LOG_SIGNING_KEY")
    file = Path(path)
    if not file.exists():
        if configured:
            raise ImproperlyConfigured(
                f"LEDGER_LOG_KEY_FILE {file} does not exist: run `manage.py ledger_keygen`."
            )
        # Another process may make it first: then use theirs.
        with contextlib.suppress(FileExistsError):
            write_key_file(file, Signer.generate(origin))
    return _read_key(file.read_text(encoding="ascii"), str(file))


def log_signer() -> Signer:
    """The key that signs checkpoints (made under DATA_DIR on first use by default)."""
    path, configured = key_file_path()
    env_key = getattr(settings, "LEDGER_LOG_SIGNING_KEY", "")
    return _signer(env_key, str(path), configured, default_origin())


def log_verifier() -> Verifier:
    return log_signer().verifier


def log_verifiers() -> list[Verifier]:
    """The current verifier key and the previous ones still trusted for old checkpoints."""
    keys = [log_verifier()]
    for text in getattr(settings, "LEDGER_LOG_PREVIOUS_KEYS", []):
        try:
            keys.append(parse_verifier_key(text))
        except NoteError as exc:
            raise ImproperlyConfigured(f"LEDGER_LOG_PREVIOUS_KEYS: {exc}") from None
    return keys


def witness_verifiers() -> list[Verifier]:
    """The witnesses whose cosignatures the portal accepts (LEDGER_LOG_WITNESS_KEYS):
    cosignature/v1 keys, each name once."""
    witnesses: list[Verifier] = []
    for text in getattr(settings, "LEDGER_LOG_WITNESS_KEYS", []):
        try:
            key = parse_verifier_key(text)
        except NoteError as exc:
            raise ImproperlyConfigured(f"LEDGER_LOG_WITNESS_KEYS: {exc}") from None
        if key.alg != ALG_COSIGNATURE_V1:
            raise ImproperlyConfigured(
                f"LEDGER_LOG_WITNESS_KEYS: {key.name} is not a cosignature/v1 (type 0x04) key; "
                "make one with kamen-verify witness-keygen"
            )
        if any(w.name == key.name for w in witnesses):
            raise ImproperlyConfigured(f"LEDGER_LOG_WITNESS_KEYS: {key.name} is listed twice")
        witnesses.append(key)
    return witnesses
