"""One write path per app: only ``services`` modules write models.

Scans the application code (not tests or migrations) for model writes —
``.save(``, ``.delete(``, ``.create(``, ``.update(``, ``bulk_*``,
``get_or_create``, ``update_or_create`` — and fails on any outside a
``services`` package, except the few places listed below with their reason.
"""

import ast
from pathlib import Path

from django.conf import settings

APPS = ("kamen_portal", "members", "compensation", "appeals", "portal", "integrations")
WRITES = {
    "save",
    "delete",
    "create",
    "update",
    "bulk_create",
    "bulk_update",
    "get_or_create",
    "update_or_create",
}
# Receivers that are not models: Pillow images, dicts, ZIP archives, files,
# fontTools fonts (compensation/pdf_font.py).
NOT_MODELS = {
    "image",
    "out",
    "context",
    "extra",
    "archive",
    "globals",
    "handle",
    "hasher",
    "font",
    # compensation/log_verify.py: the recomputed hashes, a dict.
    "known",
}
ALLOWED = {
    # Django's user manager contract: create_user() saves the user it builds.
    "members/models.py": "UserManager._create_user",
    # The append-only guard: LedgerEntry.save refuses updates, then saves.
    "compensation/models/ledger.py": "LedgerEntry.save",
    # The heartbeat store backend (embedded mode): hot per-session state that
    # only the ingest and detection services drive, not domain records.
    "compensation/store.py": "DatabaseStore",
    # The COPY-based bulk insert services call (ledger entries, outbox
    # events); off PostgreSQL it is bulk_create. It writes only what a
    # service hands it.
    "kamen_portal/bulk.py": "copy_insert",
    # Rate-limit counters: cache keys, not models (counter_clear deletes one).
    "kamen_portal/cache.py": "counter_clear",
}


def _receiver_name(node: ast.expr) -> str:
    while isinstance(node, ast.Attribute | ast.Call | ast.Subscript):
        node = node.value if not isinstance(node, ast.Call) else node.func
        if isinstance(node, ast.Name):
            return node.id
    return node.id if isinstance(node, ast.Name) else ""


def _writes_outside_services(base: Path):
    for app in APPS:
        for path in sorted((base / app).rglob("*.py")):
            rel = path.relative_to(base).as_posix()
            parts = path.relative_to(base).parts
            if "tests" in parts or "migrations" in parts or "services" in parts:
                continue
            if path.name == "services.py" or rel in ALLOWED:
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr in WRITES
                    and _receiver_name(node.func.value) not in NOT_MODELS
                ):
                    yield f"{rel}:{node.lineno} .{node.func.attr}("


def test_models_are_written_only_by_services():
    assert list(_writes_outside_services(Path(settings.BASE_DIR))) == []


def test_the_scan_finds_a_write_in_a_view_but_not_in_a_service(tmp_path):
    (tmp_path / "members" / "services").mkdir(parents=True)
    (tmp_path / "members" / "views.py").write_text(
        "def rename(request, profile):\n"
        "    MemberProfile.objects.filter(pk=1).update(tier='gold')\n"
        "    image.save(out, 'PNG')\n"
    )
    (tmp_path / "members" / "services" / "accounts.py").write_text(
        "def rename(profile):\n    profile.save()\n"
    )
    assert list(_writes_outside_services(tmp_path)) == ["members/views.py:2 .update("]
