"""Services name the tasks they enqueue; every name must be a real task."""

import re
from pathlib import Path

from django.conf import settings

from kamen_portal.queue import task_named

_NAMED = re.compile(r"enqueue_(?:on_commit|now|coalesced_on_commit)\(\s*\"([\w.]+)\"")


def test_every_task_a_service_names_is_registered():
    names = set()
    for path in Path(settings.BASE_DIR).glob("*/**/*.py"):
        if ".venv" in path.parts or "tests" in path.parts:
            continue
        names |= set(_NAMED.findall(path.read_text(encoding="utf-8")))
    assert {"compensation.tasks.pay_incident", "members.tasks.send_notification_emails"} <= names
    for name in sorted(names):
        assert task_named(name).name == name
