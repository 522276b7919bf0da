import pytest
from django.core import mail
from django.urls import reverse

from members.models import Notification, NotificationKind
from members.tests.factories import PASSWORD, MemberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def eager_celery():
    from kamen_portal.celery import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def _login(client, email, agent):
    return client.post(
        reverse("account_login"), {"login": email, "password": PASSWORD}, HTTP_USER_AGENT=agent
    )


def test_sign_in_from_a_new_device_is_emailed_but_the_first_and_known_ones_are_not(
    client, django_capture_on_commit_callbacks
):
    MemberFactory(email="dev@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        _login(client, "dev@example.com", "Firefox/1")  # first device ever: nothing to compare with
        client.logout()
        _login(client, "dev@example.com", "Firefox/1")
        client.logout()
    assert not Notification.objects.filter(kind=NotificationKind.SECURITY).exists()
    with django_capture_on_commit_callbacks(execute=True):
        _login(client, "dev@example.com", "Chrome/2")
    notice = Notification.objects.get(kind=NotificationKind.SECURITY)
    assert notice.email_status == "sent"
    assert any(m.to == ["dev@example.com"] for m in mail.outbox)


def test_password_change_is_emailed(client, django_capture_on_commit_callbacks):
    user = MemberFactory(email="pw@example.com")
    client.force_login(user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("account_change_password"),
            {
                "oldpassword": PASSWORD,
                "password1": "Brand-new-secret-88",
                "password2": "Brand-new-secret-88",
            },
        )
    assert response.status_code == 302
    assert Notification.objects.filter(user=user, kind=NotificationKind.SECURITY).count() == 1
    assert len(mail.outbox) == 1
