"""Staff sign-in in the browser: the one door (allauth) with its TOTP step."""

import re

from members.tests.factories import PASSWORD
from members.tests.mfa import totp_code, totp_secret


def admin_sign_in(page, base: str, user, *, password: str = PASSWORD, path: str = "/admin/"):
    """Open ``path`` in the admin as ``user`` through the allauth sign-in:
    email and password, then a code from the user's authenticator (TOTP is
    enrolled first if the user has none). Leaves the page on ``path``."""
    secret = totp_secret(user)
    page.goto(f"{base}{path}")
    page.wait_for_url(re.compile(r"/accounts/login/"))
    page.fill("input[name=login]", user.email)
    page.fill("input[name=password]", password)
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_url(re.compile(r"/accounts/2fa/authenticate/"))
    page.fill("input[name=code]", totp_code(secret))
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_url(re.compile(re.escape(path) + "$"))
