"""Shared fixtures and the rules for tests that need real services.

Tests marked ``postgres`` or ``redis`` run against the real servers when
DATABASE_URL / REDIS_URL point at them (``make test`` starts throwaway ones
when they are installed), and are skipped with the reason otherwise; the run
then ends with one line saying what was left out and how to get it.

KAMEN_FAIL_ON_SKIP: ``true`` fails a run that skipped any test (CI on
PostgreSQL and Redis); ``unmarked`` fails one that skipped a test not marked
``postgres`` or ``redis`` (CI's embedded run); ``false`` (default) neither.
"""

import os
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import time_machine
from django.conf import settings
from django.core.cache import cache

# The verifier is a separate, installable package (kamen_verify/, `pip install
# ./kamen_verify`): tests (its own, and those that hand it what the portal
# produced, e.g. a mediation bundle) import it from its source tree.
_VERIFY_SRC = Path(__file__).resolve().parent / "kamen_verify" / "src"
if str(_VERIFY_SRC) not in sys.path:
    sys.path.insert(0, str(_VERIFY_SRC))

# Whole-system tests that start real processes (browsers, servers, workers)
# or race threads on PostgreSQL: `make test-fast` leaves them out.
_SLOW_PATHS = (
    "tests/e2e/",
    "tests/contract/",
    "tests/node_agent/test_agent_e2e.py",
    "tests/test_json_logs_run.py",
    "tests/node_agent/test_agent_pythons.py",
    "compensation/tests/test_faults.py",
    "members/tests/test_notifications_real.py",
    "kamen_portal/tests/test_layers.py",
)


def pytest_configure(config):
    _skip_policy()  # a misspelt KAMEN_FAIL_ON_SKIP stops the run before it starts
    # Tests hash many passwords (factories, sign-ins); the production hasher
    # is deliberately slow. Subprocess servers keep the real settings.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Parallel workers (make test-fast, pytest-xdist) each get their own
    # cache: tests clear it, and must not clear each other's rate limits.
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        cache_settings = settings.CACHES["default"]
        if cache_settings["BACKEND"].endswith("FileBasedCache"):
            cache_settings["LOCATION"] = f"{cache_settings['LOCATION']}-{worker}"
        else:
            # Redis: clear() flushes a whole database, so one database each.
            base, _, db = cache_settings["LOCATION"].rpartition("/")
            index = int(worker.removeprefix("gw") or 0) + 1
            cache_settings["LOCATION"] = f"{base}/{(int(db or 0) + index) % 16}"
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        _live_server_one_request_at_a_time()


def _live_server_one_request_at_a_time():
    """The SQLite test database lives in memory, and Django hands the live
    server's request threads that one connection (LiveServerThread's
    connections_override). Two requests at once then share one sqlite3
    connection, which fails ("cannot open savepoint - SQL statements in
    progress"): a fault of the test harness, not of the portal, whose
    embedded mode gives each thread its own connection to a file. So on
    SQLite the live server still accepts connections on threads (browsers
    keep several open) but runs the application for one request at a time;
    on PostgreSQL requests really run at once."""
    import threading

    from django.core.servers.basehttp import ThreadedWSGIServer
    from django.test.testcases import LiveServerThread

    class OneRequestAtATime(ThreadedWSGIServer):
        def set_app(self, application):
            lock = threading.Lock()

            def serialised(environ, start_response):
                with lock:
                    result = application(environ, start_response)
                    try:
                        return [b"".join(result)]
                    finally:
                        if hasattr(result, "close"):
                            result.close()

            super().set_app(serialised)

    LiveServerThread.server_class = OneRequestAtATime


def pytest_collection_modifyitems(config, items):
    slow = pytest.mark.slow
    for item in items:
        path = item.nodeid.split("::")[0]
        if (
            path.startswith(_SLOW_PATHS)
            or "postgres" in item.keywords
            or "e2e" in item.keywords
            or "redis" in item.keywords
        ):
            item.add_marker(slow)
    is_postgres = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
    has_redis = bool(settings.REDIS_URL)
    skip_pg = pytest.mark.skip(reason="needs PostgreSQL: set DATABASE_URL=postgres://...")
    skip_redis = pytest.mark.skip(reason="needs Redis: set REDIS_URL=redis://...")
    for item in items:
        if "postgres" in item.keywords and not is_postgres:
            item.add_marker(skip_pg)
        if "redis" in item.keywords and not has_redis:
            item.add_marker(skip_redis)


_SERVICE_MARKS = ("postgres", "redis")
_skipped_for_services: dict[str, set[str]] = {mark: set() for mark in _SERVICE_MARKS}
_skipped_otherwise: list[str] = []


def _skip_policy() -> str:
    value = os.environ.get("KAMEN_FAIL_ON_SKIP", "false").strip().lower()
    if value not in ("true", "false", "unmarked"):
        raise pytest.UsageError(
            f"KAMEN_FAIL_ON_SKIP must be true, false or unmarked (got {value!r})."
        )
    return value


def pytest_runtest_logreport(report):
    if not report.skipped or getattr(report, "wasxfail", None) is not None:
        return
    marks = [mark for mark in _SERVICE_MARKS if mark in report.keywords]
    for mark in marks:
        _skipped_for_services[mark].add(report.nodeid)
    if not marks:
        _skipped_otherwise.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus):
    policy = _skip_policy()
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if policy == "false" or reporter is None or session.exitstatus != 0:
        return
    skipped = len(reporter.stats.get("skipped", []))
    if policy == "true" and skipped:
        reporter.write_line(
            f"KAMEN_FAIL_ON_SKIP: {skipped} test(s) were skipped; CI requires none.", red=True
        )
        session.exitstatus = 1
    elif policy == "unmarked" and _skipped_otherwise:
        reporter.write_line(
            f"KAMEN_FAIL_ON_SKIP=unmarked: {len(_skipped_otherwise)} test(s) not marked "
            f"postgres/redis were skipped, e.g. {_skipped_otherwise[0]}",
            red=True,
        )
        session.exitstatus = 1


def pytest_unconfigure(config):
    """The last line of an embedded run: what it left out, and how to get it.
    (After pytest's own summary line, so a newcomer reads it.)"""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    pg = _skipped_for_services["postgres"]
    redis = _skipped_for_services["redis"]
    if reporter is None or not (pg or redis):
        return
    needs = " and ".join(
        text
        for count, text in (
            (len(pg), f"{len(pg)} need PostgreSQL"),
            (len(redis), f"{len(redis)} need Redis"),
        )
        if count
    )
    both = " (some need both)" if pg & redis else ""
    reporter.write_line(
        f"Embedded mode (SQLite, no Redis): {len(pg | redis)} tests were skipped, {needs}{both} "
        "(races, fault, worker and broker tests); `apt-get install postgresql redis-server` "
        "and `make test` starts throwaway servers itself (or set DATABASE_URL / REDIS_URL).",
        yellow=True,
        bold=True,
    )


@pytest.fixture(autouse=True)
def _clean_cache():
    # Rate limits and axes counters live in the cache; a test must not inherit
    # another test's failed logins.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def member_user(db):
    from members.tests.factories import MemberFactory

    return MemberFactory()


@pytest.fixture
def member_client(client, member_user):
    client.force_login(member_user)
    return client


@pytest.fixture
def staff_user(db):
    from members.tests.factories import StaffFactory

    return StaffFactory()


# Deadlines, countdowns and "overdue" are computed from "now": view tests
# that show them freeze it, so a test never straddles a minute or the end of
# a window mid-request. A fixed instant well after the migrations' policy.
FROZEN_AT = datetime(2026, 11, 20, 12, 0, 30, tzinfo=UTC)


@pytest.fixture
def frozen_clock():
    with time_machine.travel(FROZEN_AT, tick=False):
        yield FROZEN_AT


@pytest.fixture(scope="session")
def output_dir():
    path = os.path.join(settings.BASE_DIR, "test-output")
    os.makedirs(path, exist_ok=True)
    return path


# A throwaway redis-server as this process's Celery broker (fault tests).
from tests.workers import broker  # noqa: E402, F401


@pytest.fixture(autouse=True)
def _ledger_explains_every_expiry(request):
    """After every test that touched the database, each member's expiry must
    still be explained by their ledger entries (verify_ledger's
    reconciliation): no code path may move membership time without one."""
    uses_db = {"db", "transactional_db"} & set(
        request.fixturenames
    ) or request.node.get_closest_marker("django_db")
    if not uses_db or request.node.get_closest_marker("ledger_tampered"):
        yield
        return
    request.getfixturevalue(
        "transactional_db" if "transactional_db" in request.fixturenames else "db"
    )
    yield
    from compensation.ledger import reconcile_expiries

    problems = reconcile_expiries()[1]
    assert not problems, f"membership time moved outside the ledger: {problems[:3]}"
