"""The embedded mode's console e-mail backend prints what a person reads:
decoded headers, the body, the links, between banners."""

import io

from django.core.mail import EmailMessage, EmailMultiAlternatives, get_connection

from kamen_portal.console_email import render

BACKEND = "kamen_portal.console_email.EmailBackend"


def _print(message) -> str:
    stream = io.StringIO()
    get_connection(BACKEND, stream=stream).send_messages([message])
    return stream.getvalue()


def test_a_chinese_email_prints_decoded_between_banners_with_its_links():
    message = EmailMessage(
        subject="[卡盟会员中心] 请确认你的电子邮箱",
        body=(
            "你好！\n请打开下面的链接确认邮箱：\n"
            "http://127.0.0.1:18000/accounts/confirm-email/Mg:1t2/。\n"
            "或者看看 https://portal.example/policy/#caps, 谢谢。\n"
        ),
        from_email="卡盟会员中心 <noreply@kamen.example>",
        to=["成员 <member@example.com>"],
        cc=["audit@example.com"],
    )
    out = _print(message)
    assert "=?utf-8?" not in out and "Content-Transfer-Encoding" not in out
    assert " E-MAIL (printed, not sent: set EMAIL_URL to send)" in out
    assert out.count("=" * 78) == 3  # banner above, under the title, and below
    assert " Subject:  [卡盟会员中心] 请确认你的电子邮箱" in out
    assert " From:     卡盟会员中心 <noreply@kamen.example>" in out
    assert " To:       成员 <member@example.com>" in out
    assert " Cc:       audit@example.com" in out
    assert "Bcc:" not in out  # empty headers are left out
    assert "请打开下面的链接确认邮箱：" in out
    links = out.split(" Links:\n", 1)[1].split("\n=")[0].splitlines()
    # Trailing sentence punctuation is not part of a link.
    assert links == [
        "   http://127.0.0.1:18000/accounts/confirm-email/Mg:1t2/",
        "   https://portal.example/policy/#caps",
    ]


def test_an_html_only_email_prints_its_text_and_link_targets():
    message = EmailMultiAlternatives(subject="Receipt", body="", to=["m@example.com"])
    message.attach_alternative(
        "<style>p{color:red}</style><p>Your receipt is ready.</p>"
        '<p><a href="http://127.0.0.1:8000/my/receipts/1/?a=1&amp;b=2">Open it</a></p>',
        "text/html",
    )
    message.attach("receipt.json", "{}", "application/json")
    out = render(message)
    assert "Your receipt is ready." in out and "Open it" in out and "color:red" not in out
    assert "   http://127.0.0.1:8000/my/receipts/1/?a=1&b=2" in out
    assert " Attachments: receipt.json (application/json)" in out
    assert " (it has an HTML version too)" in out


def test_the_embedded_default_uses_it():
    # Under pytest Django swaps in the locmem backend; the settings module
    # still holds the one `make run` uses when no EMAIL_URL is set.
    from kamen_portal import settings as portal_settings

    if not portal_settings.EMAIL_URL:
        assert portal_settings.EMAIL_BACKEND == BACKEND


def test_in_a_celery_worker_it_bypasses_the_stdout_proxy(capfd, monkeypatch):
    # A worker swaps sys.stdout for a proxy that logs every write; the banner
    # must reach the console as it is, not as WARNING log lines.
    proxy = io.StringIO()
    monkeypatch.setattr("sys.stdout", proxy)
    message = EmailMessage(subject="Hello", body="http://127.0.0.1:8000/x/", to=["m@example.com"])
    get_connection(BACKEND).send_messages([message])
    assert proxy.getvalue() == ""
    assert " Subject:  Hello" in capfd.readouterr().out
