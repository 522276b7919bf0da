"""System checks: a configured ledger log key that cannot sign is named at
start-up (``manage.py check``, every server start), not by the first
checkpoint a minute later."""

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured


@checks.register(checks.Tags.security, deploy=False)
def ledger_log_key_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    from .log_keys import log_signer, log_verifiers, witness_verifiers  # the registry is ready

    configured = getattr(settings, "LEDGER_LOG_SIGNING_KEY", "") or getattr(
        settings, "LEDGER_LOG_KEY_FILE", ""
    )
    errors = []
    try:
        witness_verifiers()
    except ImproperlyConfigured as exc:
        errors.append(checks.Error(str(exc), id="compensation.E002"))
    if not configured:
        return errors  # the embedded default makes its key on first use
    try:
        log_signer()
        log_verifiers()
    except ImproperlyConfigured as exc:
        errors.append(checks.Error(str(exc), id="compensation.E001"))
    return errors
