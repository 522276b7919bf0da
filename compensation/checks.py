"""System checks: a configured ledger log key that cannot sign is named at
start-up (``manage.py check``, every server start), not by the first
checkpoint a minute later."""

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured


@checks.register(checks.Tags.security, deploy=False)
def ledger_log_key_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    configured = getattr(settings, "LEDGER_LOG_SIGNING_KEY", "") or getattr(
        settings, "LEDGER_LOG_KEY_FILE", ""
    )
    if not configured:
        return []  # the embedded default makes its key on first use
    from .log_keys import log_signer, log_verifiers  # reads settings; the app registry is ready

    try:
        log_signer()
        log_verifiers()
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), id="compensation.E001")]
    return []
