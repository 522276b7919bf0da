"""Messages of libraries we ship whose Chinese we replace or supply.

Django looks in ``LOCALE_PATHS`` (our ``locale/``) before a library's own
catalog, so a msgid listed here and translated in
``locale/zh_Hans/LC_MESSAGES/django.po`` wins. Listing them in code keeps
``makemessages --no-obsolete`` from dropping them. Reasons:

- django-allauth's Chinese mixes "Email地址" and "APP" into the copy and ends
  sentences with ASCII punctuation (docs/style-zh.md: 邮箱, full-width
  punctuation, 您).
- Django 5.2 added admin strings its Chinese catalog does not have yet
  ("Model name", "Add link", ...).
- django-auditlog, django-axes and allauth's user sessions and MFA models
  ship no Chinese at all; staff read their names in the admin and the audit
  trail.

Nothing imports this module: the strings are only marked for extraction.
"""

from django.utils.translation import gettext_noop, ngettext_lazy

ALLAUTH = [
    gettext_noop("Email Addresses"),
    gettext_noop("Email Address"),
    gettext_noop("The following email addresses are associated with your account:"),
    gettext_noop("Primary"),
    gettext_noop("Re-send Verification"),
    gettext_noop("Add Email Address"),
    gettext_noop("Add Email"),
    gettext_noop("Do you really want to remove the selected email address?"),
    gettext_noop("Email Changed"),
    gettext_noop("Your email has been confirmed."),
    gettext_noop("Email Confirmation"),
    gettext_noop("Please Confirm Your Email Address"),
    gettext_noop("Email Removed"),
    gettext_noop("Current email"),
    gettext_noop("Change Email"),
    gettext_noop("Confirm Email Address"),
    gettext_noop("You have confirmed %(email)s."),
    gettext_noop("Removed email address %(email)s."),
    gettext_noop("Primary email address set."),
    gettext_noop("You cannot remove your primary email address (%(email)s)."),
    gettext_noop("Enter your password:"),
    gettext_noop("Verify Your Email Address"),
    gettext_noop("Use authenticator app or code"),
    gettext_noop("Username or email"),
    gettext_noop("Your account has no verified email address."),
    gettext_noop(
        "You cannot activate two-factor authentication until you have verified your email address."
    ),
    gettext_noop("Already have an account? Then please %(link)ssign in%(end_link)s."),
    gettext_noop("In case you forgot, your username is %(username)s."),
    gettext_noop("Started At"),
    gettext_noop("IP Address"),
    gettext_noop("Last seen at"),
    gettext_noop("Sign Out Other Sessions"),
    gettext_noop("user session"),
    gettext_noop("user sessions"),
    gettext_noop("authenticator"),
    gettext_noop("authenticators"),
]

# Django 5.2 renamed the placeholder of the too-short message (%(min_length)d
# -> %d), so its Chinese catalog no longer matches and the sign-up form spoke
# English; the others move from 你 to 您.
PASSWORDS = [
    ngettext_lazy(
        "This password is too short. It must contain at least %d character.",
        "This password is too short. It must contain at least %d characters.",
        1,
    ),
    ngettext_lazy(
        "Your password must contain at least %(min_length)d character.",
        "Your password must contain at least %(min_length)d characters.",
        1,
    ),
    gettext_noop("Your old password was entered incorrectly. Please enter it again."),
    gettext_noop("Your password can’t be too similar to your other personal information."),
    gettext_noop("Your password can’t be a commonly used password."),
    gettext_noop("Your password can’t be entirely numeric."),
    gettext_noop("The password is too similar to the %(verbose_name)s."),
    gettext_noop("This password is too common."),
    gettext_noop("This password is entirely numeric."),
]

# Data our own migration wrote: the first policy's change note
# (compensation 0002), shown on /policy/ through {% translate %}.
SEEDED = [gettext_noop("Initial policy")]

DJANGO_ADMIN = [
    gettext_noop("Model name"),
    gettext_noop("Add link"),
    gettext_noop("Change or view list link"),
]

AUDITLOG = [
    gettext_noop("Audit log"),
    gettext_noop("Changes"),
    gettext_noop("Resource Type"),
    gettext_noop("Correlation ID"),
    gettext_noop("Click to filter by records with this correlation id"),
    gettext_noop("Resource"),
    gettext_noop("Audit log: %s"),
    gettext_noop("create"),
    gettext_noop("update"),
    gettext_noop("delete"),
    gettext_noop("access"),
    gettext_noop("content type"),
    gettext_noop("object pk"),
    gettext_noop("object id"),
    gettext_noop("object representation"),
    gettext_noop("action"),
    gettext_noop("change message"),
    gettext_noop("actor"),
    gettext_noop("remote address"),
    gettext_noop("remote port"),
    gettext_noop("timestamp"),
    gettext_noop("additional data"),
    gettext_noop("actor email"),
    gettext_noop("log entry"),
    gettext_noop("log entries"),
    gettext_noop("Created {repr:s}"),
    gettext_noop("Updated {repr:s}"),
    gettext_noop("Deleted {repr:s}"),
    gettext_noop("Logged {repr:s}"),
    gettext_noop("Field"),
    gettext_noop("From"),
    gettext_noop("To"),
    gettext_noop("Relationship"),
    gettext_noop("Objects"),
    gettext_noop("system"),
    gettext_noop("No field changes"),
    gettext_noop("No log entries found."),
]

AXES = [
    gettext_noop("Axes"),
    gettext_noop("access attempt"),
    gettext_noop("access attempts"),
    gettext_noop("access failure"),
    gettext_noop("access failures"),
    gettext_noop("access log"),
    gettext_noop("access logs"),
    gettext_noop("access attempt expiration"),
    gettext_noop("access attempt expirations"),
]
