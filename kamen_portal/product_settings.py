"""The product's own knobs (ingest, card keys and platform events, appeals,
operations, integrations), each read from the environment with its default.
kamen_portal/settings.py imports them by name; docs/deployment.md lists them."""

from django.core.exceptions import ImproperlyConfigured

from .env import env_int, env_list, env_str

# --- Heartbeat ingest --------------------------------------------------------
# Requests per node (each up to 1,000 heartbeats).
NODE_THROTTLE_RATE = env_str("NODE_THROTTLE_RATE", "1200/minute")
HEARTBEAT_MAX_BODY_BYTES = 2 * 1024 * 1024
# The one source of absolute links: e-mails, the Atom feed, receipts and the
# mediation bundle (kamen_portal.http.portal_url). Unset, it follows PORT
# (what `make run` serves on), so links never point at a port nobody listens on.
PORTAL_BASE_URL = env_str(
    "PORTAL_BASE_URL", f"http://127.0.0.1:{env_int('PORT', default=8000)}"
).rstrip("/")
# The ledger's transparency log (compensation/log_keys.py): the checkpoints'
# origin line (default "<host of PORTAL_BASE_URL>/ledger"), the Ed25519
# signing key as text or as a file (default: DATA_DIR/ledger-log.key, made on
# first use), and verifier keys of rotated-out keys still trusted for the
# checkpoints they signed.
LEDGER_LOG_ORIGIN = env_str("LEDGER_LOG_ORIGIN", "")
LEDGER_LOG_SIGNING_KEY = env_str("LEDGER_LOG_SIGNING_KEY", "")
LEDGER_LOG_KEY_FILE = env_str("LEDGER_LOG_KEY_FILE", "")
LEDGER_LOG_PREVIOUS_KEYS = env_list("LEDGER_LOG_PREVIOUS_KEYS", default=[])
# Witnesses whose cosignatures the portal accepts and shows (C2SP
# tlog-cosignature): their verifier keys, "<name>+<key ID>+<base64>", type
# 0x04 (``kamen-verify witness-keygen`` prints one).
LEDGER_LOG_WITNESS_KEYS = env_list("LEDGER_LOG_WITNESS_KEYS", default=[])
EMAIL_MESSAGE_ID_DOMAIN = env_str("EMAIL_MESSAGE_ID_DOMAIN", "kamen.example")
# A notification e-mail the SMTP server refuses is retried with exponential
# back-off (30 s, 60 s, ... with jitter) capped at EMAIL_RETRY_MAX_DELAY
# seconds, for at least EMAIL_RETRY_HOURS, and only then marked failed: an
# SMTP relay that is down for an hour loses no mail.
EMAIL_RETRY_MAX_DELAY = env_int("EMAIL_RETRY_MAX_DELAY", default=900)
EMAIL_RETRY_HOURS = env_int("EMAIL_RETRY_HOURS", default=24)
if EMAIL_RETRY_MAX_DELAY < 30 or EMAIL_RETRY_HOURS < 1:
    raise ImproperlyConfigured("EMAIL_RETRY_MAX_DELAY must be >= 30 and EMAIL_RETRY_HOURS >= 1.")
# The font of PDF receipts: Noto Sans CJK from Debian's fonts-noto-cjk (an
# OpenType collection; the Simplified Chinese face is picked by name).
RECEIPT_PDF_FONT = env_str(
    "RECEIPT_PDF_FONT", "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"
)

# --- Times from outside (kamen_portal/timeinput.py) ------------------------------
# Every time the API, the forms and the admin accept lies in these years (as
# written) with an offset within ±14:00; others are refused as invalid.
TIME_INPUT_MIN_YEAR = env_int("TIME_INPUT_MIN_YEAR", default=2000)
TIME_INPUT_MAX_YEAR = env_int("TIME_INPUT_MAX_YEAR", default=2100)
if not 2 <= TIME_INPUT_MIN_YEAR <= TIME_INPUT_MAX_YEAR <= 9998:
    # One year of margin each side: an offset of 14 hours may cross a year,
    # and neither Python nor psycopg can hold year 0 or 10000.
    raise ImproperlyConfigured(
        "TIME_INPUT_MIN_YEAR and TIME_INPUT_MAX_YEAR must satisfy 2 <= min <= max <= 9998."
    )

# --- Membership time from outside: card keys and platform events -----------------
# Card keys are stored as HMAC-SHA256(CARD_KEY_PEPPER, key). Unset, a pepper is
# derived from SECRET_KEY (so it is as secret); set it explicitly in production
# so rotating SECRET_KEY does not invalidate every unsold key.
CARD_KEY_PEPPER = env_str("CARD_KEY_PEPPER", "")
# Wrong keys before redemption is refused for CARD_KEY_LOCKOUT_MINUTES, per
# member and (a higher bar: many members may share a NAT) per client address.
CARD_KEY_MEMBER_FAILURE_LIMIT = env_int("CARD_KEY_MEMBER_FAILURE_LIMIT", default=5)
CARD_KEY_IP_FAILURE_LIMIT = env_int("CARD_KEY_IP_FAILURE_LIMIT", default=20)
CARD_KEY_LOCKOUT_MINUTES = env_int("CARD_KEY_LOCKOUT_MINUTES", default=15)
# What POST /api/v1/memberships/events/ does with an e-mail address the portal
# does not know: "create" an account that waits for its owner's first sign-in
# (password reset), or "reject" the item.
MEMBERSHIP_EVENTS_UNKNOWN_MEMBERS = env_str("MEMBERSHIP_EVENTS_UNKNOWN_MEMBERS", "create")
if MEMBERSHIP_EVENTS_UNKNOWN_MEMBERS not in {"create", "reject"}:
    raise ImproperlyConfigured("MEMBERSHIP_EVENTS_UNKNOWN_MEMBERS must be create or reject.")
PLATFORM_THROTTLE_RATE = env_str("PLATFORM_THROTTLE_RATE", "600/minute")

# --- Appeals -------------------------------------------------------------------
# Reviewers may credit up to this many minutes on an appeal; above it, a
# supervisor (permission appeals.approve_above_limit) must approve.
APPEAL_REVIEWER_LIMIT_MINUTES = env_int("APPEAL_REVIEWER_LIMIT_MINUTES", default=24 * 60)
# Remind members this many hours before the appeal window of a disconnect
# that was not fully credited closes.
APPEAL_REMINDER_HOURS_BEFORE = env_int("APPEAL_REMINDER_HOURS_BEFORE", default=6)

# --- Operations ------------------------------------------------------------------
# Bearer token for Prometheus scraping /metrics (staff sessions may read it too).
METRICS_TOKEN = env_str("METRICS_TOKEN", "")
# Bearer token of the Alertmanager webhook (POST /api/v1/alerts/alertmanager/),
# which opens and resolves node incidents; unset, the receiver is off. Its own
# token: neither a node token (one node must not open incidents for others)
# nor METRICS_TOKEN (read-only scraping must not write).
ALERTMANAGER_TOKEN = env_str("ALERTMANAGER_TOKEN", "")
# How far before an alert's startsAt its outage may begin: the node's last
# accepted heartbeat, if it lies within this many minutes (the rule's `for`
# period and the scrape delay are paid); 0 starts outages at startsAt.
ALERT_OUTAGE_LOOKBACK_MINUTES = env_int("ALERT_OUTAGE_LOOKBACK_MINUTES", default=15)
if not 0 <= ALERT_OUTAGE_LOOKBACK_MINUTES <= 24 * 60:
    raise ImproperlyConfigured("ALERT_OUTAGE_LOOKBACK_MINUTES must be between 0 and 1440.")

# --- Integrations (docs/integration.md) ------------------------------------------
# Entitlement look-ups by nodes, per node, counted per member looked up (a
# batch of 1,000 counts 1,000); keep it at 1,000 per period or more.
ENTITLEMENT_THROTTLE_RATE = env_str("ENTITLEMENT_THROTTLE_RATE", "12000/minute")
# A node learns the entitlement only of members it reported a heartbeat for
# within this many days (others answer as unknown members do).
ENTITLEMENT_SCOPE_DAYS = env_int("ENTITLEMENT_SCOPE_DAYS", default=30)
# Cached answers live at most this long; every ledger entry and member status
# change also deletes them at once (after commit).
ENTITLEMENT_CACHE_SECONDS = env_int("ENTITLEMENT_CACHE_SECONDS", default=300)
# Webhook targets must be public addresses; these networks (CIDR) are allowed
# anyway, and plain http is accepted only for them (tests, a local relay).
WEBHOOK_ALLOWED_PRIVATE_NETWORKS = env_list("WEBHOOK_ALLOWED_PRIVATE_NETWORKS", default=[])
WEBHOOK_TIMEOUT_SECONDS = env_int("WEBHOOK_TIMEOUT_SECONDS", default=10)
# Retries: base * 2^(attempt-1), capped, with jitter; then the delivery fails.
WEBHOOK_RETRY_BASE_SECONDS = env_int("WEBHOOK_RETRY_BASE_SECONDS", default=30)
WEBHOOK_RETRY_MAX_SECONDS = env_int("WEBHOOK_RETRY_MAX_SECONDS", default=6 * 3600)
WEBHOOK_MAX_ATTEMPTS = env_int("WEBHOOK_MAX_ATTEMPTS", default=15)
# An endpoint failing without a single success for this long, over at least
# this many attempts, is disabled and operators are told.
WEBHOOK_DISABLE_AFTER_SECONDS = env_int("WEBHOOK_DISABLE_AFTER_SECONDS", default=3 * 24 * 3600)
WEBHOOK_DISABLE_AFTER_FAILURES = env_int("WEBHOOK_DISABLE_AFTER_FAILURES", default=20)
# Event feed requests per integration token.
INTEGRATION_THROTTLE_RATE = env_str("INTEGRATION_THROTTLE_RATE", "600/minute")
