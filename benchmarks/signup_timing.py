"""Does sign-up answer as fast for a taken address as for a new one?

``python benchmarks/signup_timing.py [--rounds 20] [--unfixed]``

Runs on a throwaway SQLite database (embedded mode, DEBUG off, the real
password hasher), signs up ``--rounds`` new addresses and as many times an
address that is already taken, interleaved, through the real allauth view
(Django's test client, no network), and prints the median and spread of
each. ``--unfixed`` measures without the adapter's equalising hash, to show
what the fix is for. Not a unit test: timing belongs here, not in CI.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--unfixed", action="store_true", help="without the equalising hash")
    args = parser.parse_args(argv)

    root = Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(root))
    data_dir = tempfile.mkdtemp(prefix="kamen-signup-bench.")
    for name in ("DATABASE_URL", "REDIS_URL", "EMAIL_URL"):
        os.environ.pop(name, None)
    os.environ.update(
        DATA_DIR=data_dir, DEBUG="false", SECRET_KEY="bench-" + "x" * 50, LOG_LEVEL="WARNING"
    )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kamen_portal.settings")

    warnings.filterwarnings("ignore", message="No directory at")  # no collectstatic here
    try:
        return _run(args)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def _run(args: argparse.Namespace) -> int:
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.test import Client
    from django.test.utils import setup_test_environment

    setup_test_environment()  # locmem email, ALLOWED_HOSTS testserver
    settings.ACCOUNT_RATE_LIMITS = False  # 40 sign-ups a minute from one address
    call_command("migrate", verbosity=0)

    from allauth.account.adapter import DefaultAccountAdapter

    from members.adapters import AccountAdapter
    from members.tests.factories import MemberFactory

    if args.unfixed:
        AccountAdapter.respond_email_verification_sent = (
            DefaultAccountAdapter.respond_email_verification_sent
        )
    MemberFactory(email="taken@example.com")

    def signup(email: str) -> float:
        client = Client()
        started = time.perf_counter()
        response = client.post(
            "/accounts/signup/",
            {
                "email": email,
                "password1": "Lantern-harbour-2718",
                "password2": "Lantern-harbour-2718",
            },
            secure=True,  # DEBUG off redirects plain HTTP
        )
        elapsed = time.perf_counter() - started
        assert response.status_code == 302, response.status_code
        return elapsed

    signup("warmup@example.com")
    signup("taken@example.com")
    fresh, taken = [], []
    for i in range(args.rounds):
        fresh.append(signup(f"new{i}@example.com"))
        taken.append(signup("taken@example.com"))

    def line(name: str, values: list[float]) -> str:
        ms = sorted(v * 1000 for v in values)
        return (
            f"{name:<14} median {statistics.median(ms):7.1f} ms   "
            f"min {ms[0]:7.1f}   max {ms[-1]:7.1f}   (n={len(ms)})"
        )

    print(f"sign-up timing, SQLite, {'UNFIXED' if args.unfixed else 'fixed'}:")
    print(line("new address", fresh))
    print(line("taken address", taken))
    ratio = statistics.median(taken) / statistics.median(fresh)
    print(f"taken / new median: {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
