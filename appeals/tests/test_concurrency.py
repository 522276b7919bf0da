"""Two reviewers at once, a double-clicked submit: real PostgreSQL, threads."""

import uuid
from datetime import timedelta

import pytest

from appeals.evidence import clean_uploads
from appeals.models import Appeal, AppealStatus
from appeals.services import AppealError, appeal_approve, appeal_submit
from appeals.tests.factories import upload
from compensation.models import LedgerEntry
from compensation.tests.test_concurrency import race

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_two_reviewers_approving_at_once_make_one_decision_and_one_credit(
    file_appeal, reviewer, supervisor, now
):
    appeal = file_appeal()
    outcomes = []

    def approve(staff):
        def run():
            try:
                appeal_approve(appeal=appeal, staff=staff, minutes=30, reason="Confirmed.", now=now)
                outcomes.append("approved")
            except AppealError as exc:
                outcomes.append(exc.code)

        return run

    staff = iter([reviewer, supervisor, reviewer, supervisor])
    race(lambda: approve(next(staff))(), n=4)
    assert sorted(outcomes) == ["approved", "conflict", "conflict", "conflict"]
    assert LedgerEntry.objects.exclude(kind="opening").filter(source_kind="appeal").count() == 1
    assert Appeal.objects.get().status == AppealStatus.APPROVED


def test_a_double_clicked_submit_creates_one_appeal(member, now):
    token = uuid.uuid4()

    def submit():
        appeal_submit(
            member=member,
            actor=member.user,
            claimed_start=now - timedelta(minutes=50),
            claimed_end=now - timedelta(minutes=20),
            description="twice",
            files=clean_uploads(screenshots=[upload()], logs=[], require_screenshot=True),
            submission_token=token,
            now=now,
        )

    race(submit, n=4)
    assert Appeal.objects.count() == 1
