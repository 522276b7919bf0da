"""Deadlines read the same everywhere: time left and the moment, together."""

from datetime import UTC, datetime, timedelta

import time_machine
from django.template import Context, Template
from django.utils import timezone, translation

from members.deadlines import DUE, deadline_text

NOW = datetime(2026, 11, 30, 10, 36, 0, tzinfo=UTC)  # 18:36 in Shanghai


def test_relative_and_absolute_together_in_the_readers_zone():
    value = NOW + timedelta(hours=23, minutes=33, seconds=20)
    with translation.override("en"), timezone.override("Asia/Shanghai"):
        assert deadline_text(value, now=NOW).full == "23 h 33 min left (until 1 Dec 18:09)"
    with translation.override("zh-hans"), timezone.override("Asia/Shanghai"):
        assert deadline_text(value, now=NOW).full == "剩余 23 小时 33 分（截至 12-01 18:09）"
    with translation.override("en"):
        london = deadline_text(value, now=NOW, tz="Europe/London").full
    assert london == "23 h 33 min left (until 1 Dec 10:09)"


def test_days_minutes_and_the_last_minute():
    with translation.override("en"), timezone.override("UTC"):
        assert deadline_text(NOW + timedelta(days=2, hours=3), now=NOW).relative == "2 d 3 h left"
        assert deadline_text(NOW + timedelta(minutes=7), now=NOW).relative == "7 min left"
        assert deadline_text(NOW + timedelta(seconds=30), now=NOW).relative == (
            "less than 1 min left"
        )
        assert deadline_text(NOW + timedelta(days=400), now=NOW).absolute == "4 Jan 2028 10:36"


def test_past_windows_are_closed_and_past_dues_are_overdue():
    with translation.override("zh-hans"), timezone.override("Asia/Shanghai"):
        closed = deadline_text(NOW - timedelta(hours=1), now=NOW)
        overdue = deadline_text(NOW - timedelta(hours=1), now=NOW, kind=DUE)
    assert closed.past and closed.full == "已于 11-30 17:36 截止"
    assert overdue.full == "已逾期，应于 11-30 17:36 前"


def test_the_tag_keeps_the_whole_sentence_as_text_for_screen_readers():
    value = NOW + timedelta(hours=2)
    with (
        time_machine.travel(NOW, tick=False),
        translation.override("en"),
        timezone.override("UTC"),
    ):
        html = Template("{% load deadlines %}{% deadline value %}").render(
            Context({"value": value})
        )
        empty = Template('{% load deadlines %}{% deadline value "due" %}').render(
            Context({"value": None})
        )
    assert 'datetime="2026-11-30T12:36:00+00:00"' in html
    assert '<span data-role="relative">2 h 0 min left</span> (until 30 Nov 12:36)' in html
    assert "is-urgent" in html and "aria-hidden" not in html
    assert empty == "—"
