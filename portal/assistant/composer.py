"""The composer's common part: the links and next step an answer carries,
and the time formatting every answer shares."""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import datetime

from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from members.models import MemberProfile
from portal import help as help_centre


@dataclass
class Link:
    label: str
    url: str
    kind: str  # receipt, disconnect, appeal, policy, status, article, page


@dataclass
class NextStep:
    kind: str  # appeal (pre-filled), support (message to staff), sign_in
    label: str
    url: str


def fmt_short(moment: datetime | None, tz) -> str:
    if moment is None:
        return ""
    return timezone.localtime(moment, tz).strftime("%m-%d %H:%M")


def fmt_date(moment: datetime, tz) -> str:
    return timezone.localtime(moment, tz).strftime("%Y-%m-%d %H:%M")


def member_tz(member: MemberProfile | None):
    if member is not None:
        try:
            return zoneinfo.ZoneInfo(member.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            pass
    return timezone.get_current_timezone()


def article_link(slug: str, language: str) -> Link | None:
    article = help_centre.article_by_slug(slug)
    if article is None:
        return None
    return Link(article.title[language], reverse("help:article", kwargs={"slug": slug}), "article")


class ComposerBase:
    """State shared by the answer mixins: who asks, when, and what was linked."""

    def __init__(self, *, member, language, now, norm, ents, policy):
        self.member = member
        self.language = language
        self.now = now
        self.norm = norm
        self.ents = ents
        self.policy = policy
        self.tz = member_tz(member)
        self.links: list[Link] = []
        self.next_step: NextStep | None = None

    def link(self, label: str, url: str, kind: str) -> None:
        if all(existing.url != url for existing in self.links):
            self.links.append(Link(label, url, kind))

    def article(self, slug: str) -> None:
        found = article_link(slug, self.language)
        if found and all(existing.url != found.url for existing in self.links):
            self.links.append(found)

    def policy_link(self, anchor: str = "") -> None:
        self.link(
            _("Compensation policy, version %(v)s") % {"v": self.policy.version},
            reverse("compensation:policy") + anchor,
            "policy",
        )

    def sign_in(self) -> None:
        self.next_step = NextStep(
            "sign_in",
            _("Sign in to see your own records"),
            reverse("account_login"),
        )

    # --- member facts -----------------------------------------------------
