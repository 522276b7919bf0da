"""Every page of the site, found rather than listed: the shared part of the
translation crawler and the accessibility run.

- ``seed_site()`` builds one of everything a page can show (the demo seed
  plus an appeal with evidence and an unread notice).
- ``start_urls()`` turns the URL resolver into paths: every named pattern
  that reverses without arguments, plus the admin's change page of one
  object per registered model. Pages with arguments are reached by
  following links from there (``crawl``), so a new page cannot be forgotten
  by a hand-kept list; ``unreached()`` names the patterns nobody reached.
- ``tests/site/text.py`` reads a page as a person does and finds the other
  language.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from io import StringIO
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import admin
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.base import reverse
from django.urls.exceptions import NoReverseMatch, Resolver404
from django.utils import timezone

from appeals.evidence import clean_uploads
from appeals.services import appeal_submit
from appeals.tests.factories import upload
from compensation.models import Disconnect, Incident, LedgerEntry, Node, Policy
from members.models import MemberProfile, Notification, User

DEMO_PASSWORD = "kamen-demo-2026"
MEMBER_EMAIL = "member1@example.com"
ROLE_EMAILS = {
    "member": MEMBER_EMAIL,
    "reviewer": "reviewer@example.com",
    "supervisor": "supervisor@example.com",
}

# Paths never fetched, each for a reason:
SKIP_PREFIXES = (
    "/api/",  # machine interfaces (JSON) and the vendored Swagger UI for developers
    "/static/",
    "/media/",
    "/accounts/logout/",  # would end the crawl's session
    "/i18n/setlang/",  # POST only; the switch itself is what the crawl varies
    "/admin/logout/",
    "/__errors__/",  # DEBUG-only previews
    "/metrics",
    "/healthz",
    "/readyz",
    "/favicon.ico",
)
# A change page is enough of each admin object: deleting, history and the
# like are Django's own pages, translated by Django.
SKIP_PATTERNS = re.compile(r"^/admin/.+/(delete|history)/$|/(read|read-all|withdraw|escalate)/$")
# At most this many distinct paths per view: the second appeal page shows
# nothing the first does not.
PER_VIEW = 2


@dataclass
class Site:
    member: object
    appeal: object
    data_strings: list[str] = field(default_factory=list)
    # Shown in the admin as stored: staff read both language versions of an
    # incident, a notice as it was sent, a policy's change note as typed.
    admin_data: list[str] = field(default_factory=list)


def seed_site() -> Site:
    """The demo data, an appeal with a screenshot, and a notice."""
    call_command("seed_demo", stdout=StringIO())
    now = timezone.now().replace(microsecond=0)
    member = MemberProfile.objects.select_related("user").get(user__email=MEMBER_EMAIL)
    appeal = appeal_submit(
        member=member,
        actor=member.user,
        claimed_start=now - timedelta(minutes=50),
        claimed_end=now - timedelta(minutes=35),
        description="掉线十五分钟，游戏里被踢出。",
        files=clean_uploads(screenshots=[upload()], logs=[], require_screenshot=True),
        submission_token=uuid.uuid4(),
        now=now,
    )
    # What staff and members typed is shown as typed: names and free text
    # are data, not copy (the allow-list of the crawl).
    # Language names are shown in their own language (the switch, profiles).
    data = [name for _code, name in settings.LANGUAGES]
    data += [u.email for u in User.objects.all()]
    for node in Node.objects.all():
        data += [node.name, node.description]
    data += [appeal.description] + [e.original_name for e in appeal.evidence.all()]
    admin_data = []
    for incident in Incident.objects.all():
        admin_data += [incident.title_zh, incident.title_en]
        admin_data += [incident.description_zh, incident.description_en]
        for update in incident.updates.all():
            admin_data += [update.message_zh, update.message_en]
    for notice in Notification.objects.all():
        admin_data += [notice.title, notice.body, notice.dedupe_key]
    admin_data += [p.change_note for p in Policy.objects.all()]
    admin_data += list(LedgerEntry.objects.values_list("note", flat=True))  # staff notes
    admin_data += list(Disconnect.objects.values_list("session_id", flat=True))
    admin_data += [code for code, _name in settings.LANGUAGES]  # profile values in the audit trail
    admin_data += [g.name for g in Group.objects.all()]  # role names are kept in code
    return Site(
        member=member,
        appeal=appeal,
        data_strings=[d for d in data if d],
        admin_data=sorted({d for d in admin_data if d}, key=len, reverse=True),
    )


def _patterns(patterns, prefix=""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            ns = f"{entry.namespace}:" if entry.namespace else ""
            yield from _patterns(entry.url_patterns, prefix + ns)
        elif isinstance(entry, URLPattern) and entry.name:
            yield prefix + entry.name


def named_patterns() -> list[str]:
    return sorted(set(_patterns(get_resolver().url_patterns)))


def start_urls() -> list[str]:
    """Every named page that needs no argument, and one change page per
    admin model that has an object."""
    urls = []
    for name in named_patterns():
        try:
            urls.append(reverse(name))
        except NoReverseMatch:
            continue
    for model in admin.site._registry:
        obj = model._default_manager.order_by("pk").first()
        if obj is not None:
            opts = model._meta
            urls.append(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk]))
    return [u for u in urls if fetchable(u)]


def fetchable(path: str) -> bool:
    return (
        path.startswith("/")
        and not path.startswith(SKIP_PREFIXES)
        and not SKIP_PATTERNS.search(urlsplit(path).path)
    )


def view_name(path: str) -> str | None:
    try:
        return resolve(urlsplit(path).path).view_name
    except Resolver404:
        return None


def links(html: str) -> list[str]:
    """Same-site links of a page, without fragments or admin query strings
    (sorting and filtering a changelist is the same page)."""
    out = []
    for href in re.findall(r'<a\b[^>]*\bhref="([^"#][^"]*)"', html):
        href = href.replace("&amp;", "&")
        parts = urlsplit(href)
        if parts.scheme or parts.netloc:
            continue
        if not href.startswith("/"):
            continue
        if href.startswith("/admin/") or not parts.query:
            href = parts.path
        if fetchable(href):
            out.append(href)
    return out


class Frontier:
    """Breadth-first, at most ``PER_VIEW`` paths per view."""

    def __init__(self, seeds, per_view: int = PER_VIEW):
        self.limit = per_view
        self.queue: list[str] = []
        self.seen: set[str] = set()
        self.per_view: Counter = Counter()
        self.reached: set[str] = set()
        for url in seeds:
            self.add(url)

    def add(self, url: str) -> None:
        if url in self.seen:
            return
        name = view_name(url)
        if name is None or self.per_view[name] >= self.limit:
            return
        self.seen.add(url)
        self.per_view[name] += 1
        self.queue.append(url)

    def __iter__(self):
        while self.queue:
            yield self.queue.pop(0)


def crawl(client, per_view: int = PER_VIEW, fetched: set | None = None):
    """Yield ``(path, html)`` for every page ``client`` can open, breadth
    first from the resolver's pages, following links and redirects. The view
    names of everything fetched (redirects too) go into ``fetched``."""
    frontier = Frontier(start_urls(), per_view)
    for url in frontier:
        response = client.get(url)
        if fetched is not None:
            fetched.add(view_name(url))
        if response.status_code in (301, 302):
            frontier.add(response["Location"])
            continue
        if response.status_code != 200 or "text/html" not in response.get("Content-Type", ""):
            continue
        html = response.content.decode()
        yield url, html
        for link in links(html):
            frontier.add(link)


# Views a crawl cannot open with GET, each for a reason. Everything else
# that the resolver names must be reached by some role.
NOT_CRAWLED = {
    # secrets that only arrive by email
    "account_confirm_email": "emailed key",
    "account_reset_password_from_key": "emailed key",
    "members:unsubscribe": "emailed token",
    "members:export-download": "emailed token",
    # status e-mail subscribers (anonymous): signed links that only arrive by
    # e-mail; members/tests/test_subscribers.py renders both in both languages
    "members:subscriber-confirm": "emailed token",
    "members:subscriber-unsubscribe": "emailed token",
    # POST-only actions
    "appeals:withdraw": "POST",
    "appeals:escalate": "POST",
    "members:inbox-read": "POST",
    "portal:feedback": "POST",
    "compensation:log-cosignature": "POST (witnesses send cosigned checkpoints)",
    # downloads, not pages
    "appeals:bundle": "ZIP",
    "appeals:evidence": "image",
    "compensation:receipt": "JSON",
    "compensation:ledger-chain": "JSON",
    "compensation:log-tile": "binary tiles of the transparency log",
    "mfa_download_recovery_codes": "text file",
}


def unreached(fetched_views: set[str]) -> list[str]:
    """Named pages that no role fetched. The admin's pages come from its
    registry (every changelist and a change page per model), the API is a
    machine interface, and NOT_CRAWLED says why the rest are left out."""
    missing = []
    for name in named_patterns():
        if name in fetched_views or name in NOT_CRAWLED or name.startswith(("admin:", "api-")):
            continue
        try:
            path = reverse(name)
        except NoReverseMatch:
            path = None
        if path is not None and not fetchable(path):
            continue
        missing.append(name)
    return missing
