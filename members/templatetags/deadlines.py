"""``{% deadline value %}``: relative and absolute together (members.deadlines).

The markup keeps the full sentence as plain text; static/js/countdown.js only
refreshes the relative part once a minute, and never hides the text, so a
screen reader reads the same sentence a sighted member sees."""

from django import template
from django.utils.html import format_html
from django.utils.translation import gettext as _

from ..deadlines import DUE, WINDOW, deadline_text

register = template.Library()


@register.simple_tag
def deadline(value, kind: str = WINDOW, live: bool = True):
    """``{% deadline appeal.deadline %}`` / ``{% deadline appeal.sla_due_at "due" %}``."""
    if not value:
        return "—"
    kind = DUE if kind == DUE else WINDOW
    text = deadline_text(value, kind=kind)
    classes = (
        "deadline" + (" is-closed" if text.past else "") + (" is-urgent" if text.urgent else "")
    )
    if text.past or not live:
        return format_html(
            '<time class="{}" datetime="{}">{}</time>', classes, value.isoformat(), text.full
        )
    # The JS fills these templates ({n}, {h}, {m}) as time passes.
    return format_html(
        '<time class="{}" datetime="{}" data-deadline="{}" data-kind="{}" '
        'data-fmt-days="{}" data-fmt-hm="{}" data-fmt-m="{}" data-fmt-soon="{}" data-fmt-past="{}">'
        '<span data-role="relative">{}</span>{}</time>',
        classes,
        value.isoformat(),
        value.isoformat(),
        kind,
        _("{d} d {h} h left"),
        _("{h} h {m} min left"),
        _("{m} min left"),
        _("less than 1 min left"),
        _("overdue") if kind == DUE else _("closed"),
        text.relative,
        _(" (until %(when)s)") % {"when": text.absolute},
    )


@register.filter
def deadline_plain(value, kind: str = WINDOW) -> str:
    """The same sentence as plain text (titles, admin columns)."""
    if not value:
        return "—"
    return deadline_text(value, kind=DUE if kind == DUE else WINDOW).full


@register.filter
def deadline_relative(value, kind: str = WINDOW) -> str:
    """Only the time left ("29 d 23 h left"), where the moment is shown beside it."""
    if not value:
        return "—"
    return deadline_text(value, kind=DUE if kind == DUE else WINDOW).relative
