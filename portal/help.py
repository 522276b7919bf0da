"""The help centre: a small registry of articles and its two public views.

Titles and summaries live here, one per language; the article bodies are
written natively in each language as template fragments under
``templates/help/<lang>/<slug>.html``. Bodies are rendered with the live
policy (``policy``) and the evidence limits (``limits``) in their context,
so a number in the help never contradicts the policy page or the upload
checks. Slugs are fixed: other pages and emails link to them.
"""

from __future__ import annotations

import html
import itertools
import re
import unicodedata
from dataclasses import dataclass

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils.html import escape, format_html, format_html_join, strip_tags
from django.utils.safestring import SafeString
from django.utils.translation import get_language
from django.views.decorators.http import require_safe

from appeals import evidence
from appeals.services import MAX_CLAIM_SPAN
from compensation.services.policy import policy_current

LANGUAGES = ("zh-hans", "en")
MAX_QUERY_LENGTH = 100
# More words than this add nothing but work: the rest of the query is ignored.
MAX_TERMS = 8
# Characters of context around a match: Chinese says more per character.
EXCERPT_WINDOW = {"zh-hans": (30, 90), "en": (60, 160)}
# At most this much is dropped at either end of an excerpt to cut at a space.
EXCERPT_TRIM = 20
_LEADING_PUNCTUATION = " .,;:!?)]·、，。；：！？）】"


@dataclass(frozen=True)
class Topic:
    key: str
    title: dict[str, str]


@dataclass(frozen=True)
class Article:
    slug: str
    topic: str
    title: dict[str, str]
    summary: dict[str, str]
    # Whether the body quotes policy figures (the page then names the version).
    uses_policy: bool = True

    def template_name(self, language: str) -> str:
        return f"help/{language}/{self.slug}.html"


TOPICS = (
    Topic("disconnects", {"zh-hans": "掉线与补偿", "en": "Disconnects and compensation"}),
    Topic("appeals", {"zh-hans": "申诉", "en": "Appeals"}),
    Topic("account", {"zh-hans": "凭证与账户", "en": "Receipts and your account"}),
)

ARTICLES = (
    Article(
        slug="what-is-a-disconnect",
        topic="disconnects",
        title={"zh-hans": "什么算掉线？", "en": "What counts as a disconnect?"},
        summary={
            "zh-hans": "节点正常运行而您的会话沉默超过阈值，才算掉线；节点故障和维护另算。",
            "en": "Your session falls silent past the threshold while the node runs on; "
            "node outages and maintenance are incidents.",
        },
    ),
    Article(
        slug="automatic-compensation",
        topic="disconnects",
        title={
            "zh-hans": "自动补偿怎么算、什么时候到账",
            "en": "How automatic compensation works and when it arrives",
        },
        summary={
            "zh-hans": "无需申请：掉线结束后约 30 秒自动补时，同一分钟只补一次。",
            "en": "Nothing to claim: time is credited about 30 seconds after a disconnect ends, "
            "each lost minute once.",
        },
    ),
    Article(
        slug="record-a-disconnect",
        topic="disconnects",
        title={"zh-hans": "如何自己记录一次掉线", "en": "How to record a disconnect yourself"},
        summary={
            "zh-hans": "记下时间、时长、节点和错误信息，截图时让时钟入镜，保存客户端日志。",
            "en": "Note the time, duration, node and error messages; screenshot with the clock "
            "visible; keep the client log.",
        },
    ),
    Article(
        slug="file-an-appeal",
        topic="appeals",
        title={
            "zh-hans": "如何在截止前提交申诉",
            "en": "How to file an appeal before the deadline",
        },
        summary={
            "zh-hans": "从掉线记录一键申诉或新建申诉，留意截止倒计时，按要求补充材料。",
            "en": "Appeal from your disconnects or on your own, watch the countdown, and add "
            "information when asked.",
        },
    ),
    Article(
        slug="good-evidence",
        topic="appeals",
        title={"zh-hans": "什么样的证据最有用", "en": "What evidence helps"},
        summary={
            "zh-hans": "截图和日志的格式、大小要求，以及我们如何保护您的隐私。",
            "en": "Formats and sizes for screenshots and logs, and how your privacy is protected.",
        },
    ),
    Article(
        slug="appeal-rejected",
        topic="appeals",
        title={"zh-hans": "申诉被驳回后怎么办", "en": "What to do if your appeal is rejected"},
        summary={
            "zh-hans": "查看理由，申请第三方调解，下载证据包，向 12315 等机构投诉。",
            "en": "Read the reason, take it to mediation, download the evidence bundle, contact "
            "a consumer body such as 12315.",
        },
    ),
    Article(
        slug="verify-a-receipt",
        topic="account",
        title={"zh-hans": "如何核验补偿凭证", "en": "How to verify a receipt"},
        summary={
            "zh-hans": "打开凭证页面，浏览器会与已公布的链头比对；也可下载凭证，运行几行 Python 自行核验。",
            "en": "Open the receipt page and your browser checks it against the published head; "
            "or download it and run a few lines of Python.",
        },
        uses_policy=False,
    ),
    Article(
        slug="account-security",
        topic="account",
        title={
            "zh-hans": "保持联系方式和安全设置最新",
            "en": "Keeping your contact details and security settings current",
        },
        summary={
            "zh-hans": "更换邮箱、修改密码、开启两步验证、安全通知和提醒设置。",
            "en": "Change your email or password, turn on two-factor authentication, security "
            "emails and reminders.",
        },
        uses_policy=False,
    ),
)

_BY_SLUG = {article.slug: article for article in ARTICLES}
_TOPIC_BY_KEY = {topic.key: topic for topic in TOPICS}


def current_language() -> str:
    """The active language as one of ours ("en-gb" reads English; anything
    unknown falls back to the site default, Chinese)."""
    language = (get_language() or "").lower()
    if language in LANGUAGES:
        return language
    if language.split("-")[0] == "en":
        return "en"
    return settings.LANGUAGE_CODE if settings.LANGUAGE_CODE in LANGUAGES else LANGUAGES[0]


def article_by_slug(slug: str) -> Article | None:
    return _BY_SLUG.get(slug)


def _limits() -> dict:
    """Numbers the bodies quote that are code or settings, not policy: taken
    from where they are enforced so the help cannot drift from them."""
    min_password = 8
    for validator in settings.AUTH_PASSWORD_VALIDATORS:
        if validator["NAME"].endswith("MinimumLengthValidator"):
            min_password = validator.get("OPTIONS", {}).get("min_length", min_password)
    cooloff = getattr(settings, "AXES_COOLOFF_TIME", None)
    return {
        "max_screenshots": evidence.MAX_SCREENSHOTS,
        "max_image_mb": evidence.MAX_IMAGE_BYTES // (1024 * 1024),
        "max_megapixels": evidence.MAX_PIXELS // 1_000_000,
        "max_logs": evidence.MAX_LOGS,
        "max_log_mb": evidence.MAX_LOG_BYTES // (1024 * 1024),
        "max_claim_days": MAX_CLAIM_SPAN.days,
        "reminder_hours": getattr(settings, "APPEAL_REMINDER_HOURS_BEFORE", 6),
        "email_confirm_days": getattr(settings, "ACCOUNT_EMAIL_CONFIRMATION_EXPIRE_DAYS", 3),
        "min_password_length": min_password,
        "lockout_minutes": int(cooloff.total_seconds() // 60) if cooloff else 15,
    }


def body_limits() -> dict:
    """The non-policy figures article bodies quote (the assistant indexes
    the bodies exactly as they render)."""
    return _limits()


def render_body(article: Article, *, language: str, policy, limits: dict) -> SafeString:
    return render_to_string(article.template_name(language), {"policy": policy, "limits": limits})


_BLOCK_TAGS = re.compile(r"</?(?:p|ul|ol|li|h2|h3|br|pre|div)\b[^>]*>", re.IGNORECASE)


def plain_text(fragment: str) -> str:
    """Searchable text of a body: block tags become spaces, inline tags
    vanish (so "<strong>掉线</strong>的" still reads "掉线的")."""
    text = html.unescape(strip_tags(_BLOCK_TAGS.sub(" ", fragment)))
    return " ".join(text.split())


def clean_query(raw: str) -> tuple[str, bool]:
    """Whitespace-normalised query without control characters, at most
    MAX_QUERY_LENGTH characters; also says whether it was cut."""
    text = "".join(" " if unicodedata.category(ch)[0] == "C" else ch for ch in raw)
    text = " ".join(text.split())
    if len(text) <= MAX_QUERY_LENGTH:
        return text, False
    return text[:MAX_QUERY_LENGTH].strip(), True


def _terms(query: str) -> list[str]:
    seen, terms = set(), []
    for word in query.split():
        key = word.casefold()
        if key not in seen:
            seen.add(key)
            terms.append(word)
    return terms[:MAX_TERMS]


def _highlight(text: str, pattern: re.Pattern) -> SafeString:
    """Escape ``text`` and wrap every match in <mark>."""
    pieces, last = [], 0
    for match in pattern.finditer(text):
        pieces.append((text[last : match.start()], match.group(0)))
        last = match.end()
    marked = format_html_join("", "{}<mark>{}</mark>", pieces)
    return format_html("{}{}", marked, text[last:])


def _excerpt(text: str, pattern: re.Pattern, fallback: str, *, language: str) -> SafeString:
    """The passage around the match that shows the most distinct query
    words (ties: the earliest), highlighted, with ellipses where cut."""
    before, after = EXCERPT_WINDOW.get(language, EXCERPT_WINDOW["en"])
    best = None
    for match in itertools.islice(pattern.finditer(text), 200):
        start = max(0, match.start() - before)
        end = min(len(text), match.end() + after)
        found = {m.group(0).casefold() for m in pattern.finditer(text, start, end)}
        if best is None or len(found) > best[0]:
            best = (len(found), start, end)
    if best is None:
        return escape(fallback)
    _found, start, end = best
    snippet = text[start:end]
    if start > 0:
        # Begin at a word boundary where there is one (not in Chinese text).
        space = snippet.find(" ", 0, EXCERPT_TRIM)
        snippet = snippet[space + 1 :] if space >= 0 else snippet
        snippet = snippet.lstrip(_LEADING_PUNCTUATION)
    if end < len(text):
        space = snippet.rfind(" ", len(snippet) - EXCERPT_TRIM)
        snippet = snippet[:space] if space > 0 else snippet
    return format_html(
        "{}{}{}",
        "… " if start > 0 else "",
        _highlight(snippet, pattern),
        " …" if end < len(text) else "",
    )


@dataclass(frozen=True)
class SearchResult:
    article: Article
    title: SafeString
    excerpt: SafeString
    score: int


def search(query: str, *, language: str, policy, limits: dict) -> list[SearchResult]:
    """Articles whose title or body (in ``language``) contain every word of
    the query, case-insensitively; title hits first, then by frequency."""
    terms = _terms(query)
    if not terms:
        return []
    # Longest first, so "SHA-256" is marked whole rather than as "SHA".
    alternatives = sorted((re.escape(t) for t in terms), key=len, reverse=True)
    pattern = re.compile("|".join(alternatives), re.IGNORECASE)
    term_patterns = [re.compile(re.escape(t), re.IGNORECASE) for t in terms]
    results = []
    for order, article in enumerate(ARTICLES):
        title = article.title[language]
        text = plain_text(render_body(article, language=language, policy=policy, limits=limits))
        haystack = f"{title}\n{text}"
        if not all(p.search(haystack) for p in term_patterns):
            continue
        score = 10 * len(pattern.findall(title)) + len(pattern.findall(text))
        results.append(
            (
                -score,
                order,
                SearchResult(
                    article=article,
                    title=_highlight(title, pattern),
                    excerpt=_excerpt(text, pattern, article.summary[language], language=language),
                    score=score,
                ),
            )
        )
    results.sort(key=lambda row: row[:2])
    return [row[2] for row in results]


def _grouped(language: str) -> list[dict]:
    return [
        {
            "key": topic.key,
            "title": topic.title[language],
            "articles": [
                {
                    "slug": a.slug,
                    "title": a.title[language],
                    "summary": a.summary[language],
                }
                for a in ARTICLES
                if a.topic == topic.key
            ],
        }
        for topic in TOPICS
    ]


@require_safe
def help_index(request: HttpRequest) -> HttpResponse:
    language = current_language()
    query, truncated = clean_query(request.GET.get("q", ""))
    results = None
    if query:
        results = search(query, language=language, policy=policy_current(), limits=_limits())
    return render(
        request,
        "help/index.html",
        {
            "topics": _grouped(language),
            "query": query,
            "truncated": truncated,
            "max_length": MAX_QUERY_LENGTH,
            "results": results,
        },
    )


@require_safe
def help_article(request: HttpRequest, slug: str) -> HttpResponse:
    article = article_by_slug(slug)
    if article is None:
        raise Http404("No such help article.")
    language = current_language()
    policy = policy_current()
    body = render_body(article, language=language, policy=policy, limits=_limits())
    related = [
        {"slug": a.slug, "title": a.title[language]}
        for a in ARTICLES
        if a.topic == article.topic and a.slug != article.slug
    ]
    return render(
        request,
        "help/article.html",
        {
            "article": article,
            "title": article.title[language],
            "topic_title": _TOPIC_BY_KEY[article.topic].title[language],
            "body": body,
            "policy": policy,
            "related": related,
        },
    )
