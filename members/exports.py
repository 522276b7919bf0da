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
from datetime import datetime, timedelta

from django.core import signing
from django.core.files import File
from django.db import transaction
from django.urls import reverse
from django.utils.translation import gettext as _

from kamen_portal.queue import enqueue_on_commit

from .models import DataExport, ExportStatus, NotificationKind, User
from .notifications import Message, notify_many

EXPORTS_PER_DAY = 3
LINK_LIFETIME = timedelta(hours=24)
LINK_SALT = "kamen.exports.download"
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


def _iso(value):
    return value.isoformat() if value else None


def export_request(*, user: User, now: datetime) -> DataExport:
    """Queue an export (at most EXPORTS_PER_DAY per member per day)."""
    with transaction.atomic():
        User.objects.select_for_update().get(pk=user.pk)  # serialise the quota check
        recent = DataExport.objects.filter(
            user=user, requested_at__gt=now - timedelta(days=1)
        ).count()
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


def _collect(user: User) -> dict[str, bytes]:
    from appeals.models import Appeal
    from compensation.models import Coupon, Disconnect, LedgerEntry
    from compensation.receipts import receipt_for

    from .models import Notification

    files: dict[str, bytes] = {}
    member = getattr(user, "member", None)
    profile = {
        "email": user.email,
        "date_joined": _iso(user.date_joined),
        "member_no": member.member_no if member else None,
        "tier": member.tier if member else None,
        "status": member.status if member else None,
        "expires_at": _iso(member.expires_at) if member else None,
        "language": member.language if member else None,
        "timezone": member.timezone if member else None,
    }
    files["profile.json"] = json.dumps(profile, ensure_ascii=False, indent=2).encode()
    tables: dict[str, list[dict]] = {
        "disconnects": [],
        "appeals": [],
        "ledger": [],
        "coupons": [],
        "notifications": [],
    }
    if member is not None:
        for d in (
            Disconnect.objects.filter(member=member)
            .select_related("node", "incident")
            .order_by("started_at")
        ):
            tables["disconnects"].append(
                {
                    "id": str(d.public_id),
                    "node": d.node.name,
                    "session": d.session_id,
                    "start": _iso(d.started_at),
                    "end": _iso(d.ended_at),
                    "status": d.status,
                    "incident": str(d.incident.public_id) if d.incident else "",
                    "outcome": d.outcome,
                    "credited_minutes": d.credited_minutes,
                    "withheld_minutes": d.withheld_minutes,
                }
            )
        appeals_full = []
        for a in (
            Appeal.objects.filter(member=member)
            .prefetch_related("events", "evidence")
            .order_by("created_at")
        ):
            evidence = []
            for i, item in enumerate(a.evidence.all(), start=1):
                path = f"appeals/{a.short_id}/{i:02d}-{item.original_name}"
                with item.file.open("rb") as handle:
                    files[path] = handle.read()
                evidence.append({"file": path, "sha256": item.sha256, "kind": item.kind})
            row = {
                "id": str(a.public_id),
                "status": a.status,
                "claimed_start": _iso(a.claimed_start),
                "claimed_end": _iso(a.claimed_end),
                "description": a.description,
                "filed_at": _iso(a.created_at),
                "decided_at": _iso(a.decided_at),
                "decision_reason": a.decision_reason,
                "credited_minutes": a.credited_minutes,
            }
            tables["appeals"].append(row)
            appeals_full.append(
                {
                    **row,
                    "evidence": evidence,
                    "timeline": [
                        {
                            "when": _iso(e.created_at),
                            "event": e.kind,
                            "by": e.actor_role,
                            "from": e.old_status,
                            "to": e.new_status,
                            "message": e.message,
                        }
                        for e in a.events.all()
                    ],
                }
            )
        files["appeals.json"] = json.dumps(appeals_full, ensure_ascii=False, indent=2).encode()
        for entry in (
            LedgerEntry.objects.filter(member=member)
            .select_related("member", "reverses")
            .order_by("seq")
        ):
            tables["ledger"].append(
                {
                    "seq": entry.seq,
                    "id": str(entry.public_id),
                    "kind": entry.kind,
                    "minutes": entry.minutes,
                    "source": entry.source_kind,
                    "covered_start": _iso(entry.covered_start),
                    "covered_end": _iso(entry.covered_end),
                    "policy_version": entry.policy_version,
                    "created_at": _iso(entry.created_at),
                    "hash": entry.hash,
                }
            )
            files[f"receipts/receipt-{entry.seq}.json"] = json.dumps(
                receipt_for(entry), ensure_ascii=False, indent=2
            ).encode()
        for c in Coupon.objects.filter(member=member).order_by("issued_at"):
            tables["coupons"].append(
                {
                    "code": c.code,
                    "value": str(c.value),
                    "issued_at": _iso(c.issued_at),
                    "expires_at": _iso(c.expires_at),
                    "redeemed_at": _iso(c.redeemed_at),
                    "reason": c.reason,
                }
            )
    for n in Notification.objects.filter(user=user).order_by("created_at"):
        tables["notifications"].append(
            {
                "created_at": _iso(n.created_at),
                "kind": n.kind,
                "title": n.title,
                "body": n.body,
                "read_at": _iso(n.read_at),
                "email": n.email_status,
            }
        )
    for name, rows in tables.items():
        if name != "appeals":
            files[f"{name}.json"] = json.dumps(rows, ensure_ascii=False, indent=2).encode()
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
        "The same few lines of Python are shown on /ledger/.\n"
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
