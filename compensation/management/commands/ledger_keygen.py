from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from compensation.log_keys import default_origin, key_file_path, write_key_file
from compensation.tlog_notes import NoteError, Signer


class Command(BaseCommand):
    help = (
        "Write a new Ed25519 signing key for the ledger's transparency log (mode 0600) and "
        "print its verifier key. Default file: LEDGER_LOG_KEY_FILE, else DATA_DIR/ledger-log.key."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--output", help="where to write the key (default: the configured file)"
        )
        parser.add_argument("--name", help="the key's name (default: the log's origin)")
        parser.add_argument(
            "--force", action="store_true", help="replace an existing key (rotation)"
        )

    def handle(self, *args, output=None, name=None, force=False, **options) -> None:
        path = Path(output) if output else key_file_path()[0]
        try:
            signer = Signer.generate(name or default_origin())
        except NoteError as exc:
            raise CommandError(f"Cannot make a key named {name!r}: {exc}") from None
        try:
            write_key_file(path, signer, overwrite=force)
        except FileExistsError:
            raise CommandError(
                f"{path} exists: keep it, or pass --force to rotate (add the old verifier key "
                "to LEDGER_LOG_PREVIOUS_KEYS first)."
            ) from None
        self.stderr.write(f"Wrote the signing key to {path} (mode 0600). Verifier key:")
        self.stdout.write(signer.verifier.vkey)
