"""kamen-verify: check a receipt offline, or witness the portal's log.

Exit status: 0 verified / accepted; 1 refused (a receipt that does not
verify, or a witness alarm: bad signature, shrinking tree, fork); 2 a usage
error (bad arguments, an unreadable file or key, or the portal refused a
submitted cosignature: its key is not configured there); 3 the portal could not be
asked (network, HTTP error): nothing was decided, run again later."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .errors import VerifyError
from .notes import (
    Verifier,
    WitnessSigner,
    cosignature_line,
    cosigned_note,
    parse_verifier_key,
    parse_witness_key,
)
from .receipt import check_receipt, parse_receipt
from .witness import FetchError, SubmitRefused, Witness, http_fetch, http_submit

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3


class UsageError(Exception):
    pass


def _key_text(value: str, what: str) -> str:
    """A key given as text, as a file path, or as ``@path``."""
    path = value[1:] if value.startswith("@") else value
    if value.startswith("@") or os.path.isfile(path):
        try:
            return Path(path).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read {what} file {path}: {exc}") from None
    return value.strip()


def _verifier(value: str) -> Verifier:
    try:
        return parse_verifier_key(_key_text(value, "key"))
    except VerifyError as exc:
        raise UsageError(f"--key: {exc.message}") from None


def _witness_signer(value: str) -> WitnessSigner:
    try:
        return parse_witness_key(_key_text(value, "cosign key"))
    except VerifyError as exc:
        raise UsageError(f"--cosign-key: {exc.message}") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kamen-verify",
        description="Check Kamen ledger receipts offline and witness the portal's transparency log.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    r = sub.add_parser("receipt", help="check a version 2 receipt file offline")
    r.add_argument("file", help="the receipt JSON (receipt.json from the portal); - for stdin")
    r.add_argument("--key", required=True, help="the log's verifier key: text, a file, or @file")
    r.add_argument("--origin", help="the checkpoint origin expected (default: the key's name)")

    w = sub.add_parser("witness", help="fetch, check and keep the portal's latest checkpoint")
    w.add_argument("--url", required=True, help="the portal, e.g. https://portal.example.com")
    w.add_argument("--key", required=True, help="the log's verifier key: text, a file, or @file")
    w.add_argument("--state", required=True, help="file holding the last accepted checkpoint")
    w.add_argument("--origin", help="the checkpoint origin expected (default: the key's name)")
    w.add_argument(
        "--cosign-key",
        help="a witness signer key (PRIVATE+KEY+..., type 0x04): print a cosignature line",
    )
    w.add_argument(
        "--submit",
        action="store_true",
        help="with --cosign-key: send the cosigned checkpoint back to the portal "
        "(POST <url>/ledger/log/cosignature) instead of printing the line",
    )
    w.add_argument(
        "--entries",
        action="store_true",
        help="also fetch every entry bundle and recompute the root from the entries",
    )
    w.add_argument("--timeout", type=float, default=30.0, help="seconds per HTTP request")

    k = sub.add_parser("witness-keygen", help="make a witness (cosignature/v1) key pair")
    k.add_argument("name", help="the witness's key name, e.g. witness.example.org")
    k.add_argument("--output", required=True, help="where to write the private key (mode 0600)")
    return parser


def _receipt(args: argparse.Namespace) -> int:
    key = _verifier(args.key)
    try:
        raw = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read the receipt {args.file}: {exc.strerror or exc}") from None
    try:
        result = check_receipt(parse_receipt(raw), key, origin=args.origin)
    except VerifyError as exc:
        print(f"kamen-verify: FAIL {exc.code}: {exc.message}", file=sys.stderr)
        return EXIT_REFUSED
    print(f"OK: {result.summary}")
    return EXIT_OK


def _witness(args: argparse.Namespace) -> int:
    key = _verifier(args.key)
    cosigner = _witness_signer(args.cosign_key) if args.cosign_key else None
    if args.submit and cosigner is None:
        raise UsageError("--submit needs --cosign-key (the witness key that cosigns)")
    timeout = args.timeout
    witness = Witness(
        url=args.url,
        key=key,
        state=Path(args.state),
        origin=args.origin,
        fetch=lambda url: http_fetch(url, timeout=timeout),
        check_entries=args.entries,
    )
    try:
        result = witness.run()
    except VerifyError as exc:
        print(f"kamen-verify: ALARM {exc.code}: {exc.message}", file=sys.stderr)
        return EXIT_REFUSED
    except FetchError as exc:
        print(f"kamen-verify: could not check the log: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    print(f"OK: {result.message}", file=sys.stderr)
    if cosigner is None:
        return EXIT_OK
    if not args.submit:
        sys.stdout.write(cosignature_line(result.checkpoint, cosigner, int(time.time())))
        return EXIT_OK
    note = cosigned_note(result.checkpoint, key, cosigner, int(time.time()))
    try:
        http_submit(f"{witness.log_url}/cosignature", note, timeout=timeout)
    except SubmitRefused as exc:
        # The checkpoint was accepted (the state file keeps it); only the
        # portal would not take the cosignature: a setup question, not a fork.
        print(f"kamen-verify: the portal refused the cosignature: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except FetchError as exc:
        print(f"kamen-verify: could not send the cosignature: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    print(
        f"OK: cosigned checkpoint {result.checkpoint.fingerprint} as {cosigner.name}",
        file=sys.stderr,
    )
    return EXIT_OK


def _keygen(args: argparse.Namespace) -> int:
    try:
        signer = WitnessSigner.generate(args.name)
    except VerifyError as exc:
        raise UsageError(exc.message) from None
    try:
        fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise UsageError(f"cannot create {args.output}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(signer.signer_key + "\n")
    print(signer.verifier.vkey)  # the public key to give the portal
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    commands = {"receipt": _receipt, "witness": _witness, "witness-keygen": _keygen}
    try:
        return commands[args.command](args)
    except UsageError as exc:
        print(f"kamen-verify: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
