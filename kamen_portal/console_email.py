"""The e-mail backend of the embedded mode: each message printed for a person
to read on the `make run` console, between banners that stand out from the
log lines: subject, sender and recipients decoded, the plain-text body, and
the links in it listed on their own (the confirmation link a newcomer is
looking for). Nothing is sent; EMAIL_URL switches to real delivery.

Django's console backend prints the MIME source instead: subjects as
``=?utf-8?b?...?=`` and bodies base64 or quoted-printable for any non-ASCII
text, which is to say every Chinese e-mail."""

from __future__ import annotations

import re
import sys
from html import unescape
from html.parser import HTMLParser

from django.core.mail.backends.console import EmailBackend as DjangoConsoleBackend

WIDTH = 78
_URL = re.compile(r"https?://[^\s<>\"')\]]+")


class _Text(HTMLParser):
    """Text and link targets of an HTML part, for a message without a plain one."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hrefs: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("style", "script"):
            self._skip += 1
        if tag == "a":
            href = dict(attrs).get("href")
            if href:
                self.hrefs.append(href)
        if tag in ("p", "br", "div", "li", "tr", "h1", "h2", "h3"):
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in ("style", "script") and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def _html_parts(message) -> list[str]:
    return [
        content
        for content, mimetype in getattr(message, "alternatives", None) or []
        if mimetype == "text/html" and isinstance(content, str)
    ]


def _links(body: str, html_parts: list[str]) -> list[str]:
    found = [url.rstrip(".,;:!?。，") for url in _URL.findall(body)]
    for html in html_parts:
        parser = _Text()
        parser.feed(html)
        found += [unescape(href) for href in parser.hrefs if href.startswith(("http:", "https:"))]
    return list(dict.fromkeys(found))  # in order, once each


def _plain_body(message, html_parts: list[str]) -> str:
    body = message.body or ""
    if body.strip() or not html_parts:
        return body
    parser = _Text()
    parser.feed(html_parts[0])
    text = "".join(parser.parts)
    return re.sub(r"\n\s*\n+", "\n\n", text).strip()


def render(message) -> str:
    """The console text of one EmailMessage (a pure function, for tests)."""
    html_parts = _html_parts(message)
    rows = [
        ("Subject", message.subject),
        ("From", message.from_email),
        ("To", ", ".join(message.to)),
        ("Cc", ", ".join(message.cc)),
        ("Bcc", ", ".join(message.bcc)),
        ("Reply-To", ", ".join(message.reply_to)),
    ]
    lines = ["", "=" * WIDTH, " E-MAIL (printed, not sent: set EMAIL_URL to send)", "=" * WIDTH]
    lines += [f" {name + ':':<9} {value}" for name, value in rows if value]
    lines.append("-" * WIDTH)
    lines.append(_plain_body(message, html_parts).rstrip())
    links = _links(message.body or "", html_parts)
    if links:
        lines.append("-" * WIDTH)
        lines.append(" Links:")
        lines += [f"   {url}" for url in links]
    attachments = []
    for attachment in message.attachments:
        if isinstance(attachment, tuple):  # (filename, content, mimetype)
            attachments.append(f"{attachment[0]} ({attachment[2] or 'unknown type'})")
        else:  # a MIME part
            attachments.append(attachment.get_filename() or attachment.get_content_type())
    if attachments:
        lines.append(" Attachments: " + ", ".join(attachments))
    if html_parts:
        lines.append(" (it has an HTML version too)")
    lines += ["=" * WIDTH, ""]
    return "\n".join(lines)


class EmailBackend(DjangoConsoleBackend):
    def __init__(self, *args, **kwargs):
        # The process's own stdout: a Celery worker replaces sys.stdout with a
        # proxy that logs each write as a WARNING line, which would put a log
        # prefix in front of the banner.
        kwargs.setdefault("stream", sys.__stdout__ or sys.stdout)
        super().__init__(*args, **kwargs)

    def write_message(self, message):
        self.stream.write(render(message) + "\n")
