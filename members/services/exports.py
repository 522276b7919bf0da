"""A member's complete record as a ZIP: profile and membership, disconnects,
appeals with timelines and evidence, ledger entries with receipts, coupons and
notifications, in JSON for machines and CSV for spreadsheets, with a README
on verifying receipts against the published ledger head."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import tempfile
import zipfile
from collections.abc import Callable
from datetime import datetime, timedelta

from django.core import signing
from django.core.files import File
from django.db import transaction
from django.urls import reverse
from django.utils.translation import gettext as _

from kamen_portal.queue import enqueue_now, enqueue_on_commit

from ..models import DataExport, ExportStatus, MemberProfile, Notification, NotificationKind, User
from .notify import Message, notify_many

EXPORTS_PER_DAY = 3
LINK_LIFETIME = timedelta(hours=24)
LINK_SALT = "kamen.exports.download"
# Queued this long without a worker picking it up: the enqueue was lost.
STUCK_PENDING = timedelta(minutes=5)
# Building this long: the worker died mid-build (a build takes seconds).
STUCK_BUILDING = timedelta(minutes=30)
# Spreadsheet formula injection: cells starting with these are prefixed.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class ExportError(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def csv_cell(value) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _csv(rows: list[dict]) -> bytes:
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: csv_cell(v) for k, v in row.items()})
    # A BOM so spreadsheet programs open the Chinese text as UTF-8.
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def iso(value) -> str | None:
    """Times in exports: ISO 8601 with offset, or null."""
    return value.isoformat() if value else None


def export_request(*, user: User, now: datetime) -> DataExport:
    """Queue an export (at most EXPORTS_PER_DAY per member per day)."""
    with transaction.atomic():
        User.objects.select_for_update().get(pk=user.pk)  # serialise the quota check
        # Failed exports and ones stuck in the queue are the portal's fault:
        # they do not use up the member's daily quota.
        recent = (
            DataExport.objects.filter(user=user, requested_at__gt=now - timedelta(days=1))
            .exclude(status=ExportStatus.FAILED)
            .exclude(status=ExportStatus.PENDING, requested_at__lt=now - STUCK_PENDING)
            .count()
        )
        if recent >= EXPORTS_PER_DAY:
            raise ExportError(
                _("You can request at most %(n)d exports a day. Please try again tomorrow.")
                % {"n": EXPORTS_PER_DAY}
            )
        export = DataExport.objects.create(user=user, requested_at=now)
        enqueue_on_commit("members.tasks.build_export", export.pk)
        return export


def download_token(export: DataExport) -> str:
    return signing.TimestampSigner(salt=LINK_SALT).sign(str(export.public_id))


def download_allowed(*, export: DataExport, user: User, token: str, now: datetime) -> bool:
    """The signed link is valid for 24 hours, only for the export's owner."""
    if export.user_id != user.pk or export.status != ExportStatus.READY:
        return False
    if export.expires_at is None or export.expires_at <= now:
        return False
    try:
        value = signing.TimestampSigner(salt=LINK_SALT).unsign(token, max_age=LINK_LIFETIME)
    except signing.BadSignature:
        return False
    return value == str(export.public_id)


# Sections of the export that other apps contribute (their records of the
# member): members sits below them and cannot import them, so each app
# registers a function in its AppConfig.ready(). A section adds files and
# rows of named tables; every table is also written as JSON and CSV.
ExportSection = Callable[[User, "MemberProfile | None", dict[str, bytes], dict[str, list]], None]
_SECTIONS: list[ExportSection] = []

# Tables every export has, even when empty, in this order.
TABLES = ("disconnects", "appeals", "ledger", "coupons", "notifications")


def register_export_section(section: ExportSection) -> None:
    if section not in _SECTIONS:
        _SECTIONS.append(section)


def _collect(user: User) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    member = getattr(user, "member", None)
    profile = {
        "email": user.email,
        "date_joined": iso(user.date_joined),
        "member_no": member.member_no if member else None,
        "tier": member.tier if member else None,
        "status": member.status if member else None,
        "expires_at": iso(member.expires_at) if member else None,
        "language": member.language if member else None,
        "timezone": member.timezone if member else None,
    }
    files["profile.json"] = json.dumps(profile, ensure_ascii=False, indent=2).encode()
    tables: dict[str, list[dict]] = {name: [] for name in TABLES}
    for section in _SECTIONS:
        section(user, member, files, tables)
    for n in Notification.objects.filter(user=user).order_by("created_at"):
        tables["notifications"].append(
            {
                "created_at": iso(n.created_at),
                "kind": n.kind,
                "title": n.title,
                "body": n.body,
                "read_at": iso(n.read_at),
                "email": n.email_status,
            }
        )
    for name, rows in tables.items():
        # A section may have written a richer JSON of its table itself.
        files.setdefault(f"{name}.json", json.dumps(rows, ensure_ascii=False, indent=2).encode())
        files[f"{name}.csv"] = _csv(rows)
    files["README.txt"] = _readme().encode()
    return files


def _readme() -> str:
    return (
        "Kamen member portal: your data export / 卡盟会员中心：您的数据导出\n\n"
        "profile.json             your account and membership / 账户与会员资格\n"
        "disconnects.json|.csv    every detected disconnect and its compensation / 掉线记录及补偿结果\n"
        "appeals.json             appeals with their timelines and evidence list / 申诉、时间线与证据清单\n"
        "appeals.csv              appeals, one line each / 申诉（每行一条）\n"
        "appeals/<id>/...         your evidence files / 证据文件\n"
        "ledger.json|.csv         your ledger entries / 补偿账本条目\n"
        "receipts/receipt-N.json  a verifiable receipt for each entry / 每个条目的凭证\n"
        "coupons.json|.csv        coupons / 优惠券\n"
        "notifications.json|.csv  what we told you / 通知记录\n"
        "SHA256SUMS.txt           SHA-256 of every file / 每个文件的 SHA-256\n\n"
        "CSV cells that start with = + - or @ are prefixed with ' so spreadsheets do not run them as formulas.\n\n"
        "Verifying a receipt / 核验凭证:\n"
        "1. body_digest = sha256(JSON of 'entry', keys sorted, separators ',' ':', UTF-8)\n"
        "2. hash = sha256(prev_hash + ':' + body_digest)\n"
        "3. h = hash; for each d in chain_to_head: h = sha256(h + ':' + d)\n"
        "4. h must equal published_head.hash, which is listed on the public ledger page /ledger/.\n"
        "   published_head null: the entry is newer than the last head (published hourly);\n"
        "   next_head_due says when the next one is due: download the receipt again after it.\n"
        "The same few lines of Python are shown on /ledger/, which can also check a receipt\n"
        "file in your browser; each entry's receipt page (/my/compensation/<id>/) checks it\n"
        "against the published head and offers a PDF. / 每个条目的凭证页面可在浏览器中核验并下载 PDF。\n"
    )


def export_build(*, export_id: int, now: datetime) -> DataExport | None:
    """Build the ZIP once: the pending -> building claim must change exactly
    one row, so a task run twice builds one file."""
    claimed = DataExport.objects.filter(pk=export_id, status=ExportStatus.PENDING).update(
        status=ExportStatus.BUILDING
    )
    if claimed != 1:
        return None
    export = DataExport.objects.select_related("user__member").get(pk=export_id)
    try:
        files = _collect(export.user)
        files["SHA256SUMS.txt"] = "".join(
            f"{hashlib.sha256(data).hexdigest()}  {path}\n" for path, data in sorted(files.items())
        ).encode()
        with tempfile.TemporaryFile() as spool:
            with zipfile.ZipFile(spool, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                for path, data in files.items():
                    archive.writestr(path, data)
            spool.seek(0)
            digest = hashlib.sha256(spool.read()).hexdigest()
            size = spool.tell()
            spool.seek(0)
            export.file.save(f"{export.user_id}/{export.public_id}.zip", File(spool), save=False)
    except Exception as exc:
        DataExport.objects.filter(pk=export.pk).update(
            status=ExportStatus.FAILED, error=str(exc)[:300]
        )
        raise
    with transaction.atomic():
        DataExport.objects.filter(pk=export.pk).update(
            status=ExportStatus.READY,
            ready_at=now,
            expires_at=now + LINK_LIFETIME,
            file=export.file.name,
            size=size,
            sha256=digest,
        )
        export.refresh_from_db()
        link = (
            reverse("members:export-download", kwargs={"public_id": export.public_id})
            + f"?t={download_token(export)}"
        )
        notify_many(
            messages=[
                Message(
                    kind=NotificationKind.EXPORT_READY,
                    dedupe_key=f"export:{export.public_id}",
                    user_id=export.user_id,
                    render=lambda: (
                        _("Your data export is ready"),
                        _("Your copy of your record is ready to download for the next 24 hours."),
                        link,
                    ),
                )
            ],
            now=now,
        )
    return export


def exports_expire(*, now: datetime) -> int:
    """Delete the files of exports whose link has expired."""
    done = 0
    for export in DataExport.objects.filter(status=ExportStatus.READY, expires_at__lte=now):
        if export.file:
            export.file.delete(save=False)
        DataExport.objects.filter(pk=export.pk).update(status=ExportStatus.EXPIRED, file="")
        done += 1
    return done


def exports_sweep(*, now: datetime) -> int:
    """The sweeper every queued job has (kamen_portal.queue): exports whose
    enqueue was lost (still pending) or whose worker died (still building)
    are queued again. export_build's pending -> building claim keeps a
    re-sent task from building twice. Returns how many were re-queued."""
    DataExport.objects.filter(
        status=ExportStatus.BUILDING, requested_at__lt=now - STUCK_BUILDING
    ).update(status=ExportStatus.PENDING)
    ids = list(
        DataExport.objects.filter(
            status=ExportStatus.PENDING, requested_at__lt=now - STUCK_PENDING
        ).values_list("pk", flat=True)[:500]
    )
    for export_id in ids:
        enqueue_now("members.tasks.build_export", export_id)
    return len(ids)
