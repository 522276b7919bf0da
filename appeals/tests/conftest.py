import uuid
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, Permission
from django.utils import timezone

from appeals.evidence import clean_uploads
from appeals.services import appeal_submit
from appeals.tests.factories import upload
from members.tests.factories import MemberFactory, StaffFactory


@pytest.fixture(autouse=True)
def private_media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def now():
    return timezone.now().replace(microsecond=0)


@pytest.fixture
def member(db, now):
    return MemberFactory(membership__expires_at=now + timedelta(days=30)).member


def _staff(codenames, email):
    user = StaffFactory(email=email)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return type(user).objects.get(pk=user.pk)


@pytest.fixture
def reviewer(db):
    return _staff(["view_appeal", "change_appeal", "decide_appeal"], "rev@example.com")


@pytest.fixture
def supervisor(db):
    return _staff(
        [
            "view_appeal",
            "change_appeal",
            "decide_appeal",
            "approve_above_limit",
            "file_late_appeal",
        ],
        "sup@example.com",
    )


@pytest.fixture
def file_appeal(member, now):
    def file(*, start_ago=90, end_ago=60, actor=None, token=None, files=None, who=None, **kwargs):
        who = who or member
        return appeal_submit(
            member=who,
            actor=actor or who.user,
            claimed_start=now - timedelta(minutes=start_ago),
            claimed_end=now - timedelta(minutes=end_ago),
            description="The game kicked me out and I could not reconnect.",
            files=files
            if files is not None
            else clean_uploads(screenshots=[upload()], logs=[], require_screenshot=True),
            submission_token=token or uuid.uuid4(),
            now=kwargs.pop("at", now),
            **kwargs,
        )

    return file


__all__ = ["Group"]
