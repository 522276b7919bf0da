"""Settings for the Kamen member portal: one module, driven by environment variables.

With nothing set it runs embedded (SQLite, local files, Celery on the
filesystem broker, console email). Production sets DEBUG=false, SECRET_KEY,
ALLOWED_HOSTS, DATABASE_URL, REDIS_URL and EMAIL_URL; see README.md.
"""

from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _
from kombu import Exchange, Queue

from .env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
# Everything the embedded mode writes (database, uploads, broker queue) lives
# here, so a fresh clone stays clean and `rm -rf var` resets the demo.
DATA_DIR = Path(env_str("DATA_DIR", str(BASE_DIR / "var")))

_env = environ.Env()

DEBUG = env_bool("DEBUG", default=True)

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is false.")
    # Development-only key: never used when DEBUG is off (see above).
    SECRET_KEY = "django-insecure-kamen-development-only-key-do-not-use-in-production"

ALLOWED_HOSTS = env_list(
    "ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"] if DEBUG else []
)
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    # Form widgets render through TEMPLATES (FORM_RENDERER below), so templates/
    # can mend a widget (admin split date-time labels).
    "django.forms",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.sites",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "allauth.usersessions",
    "axes",
    "csp",
    "auditlog",
    "members",
    "compensation",
    "appeals",
    "portal",
    "integrations",
]

MIDDLEWARE = [
    "kamen_portal.logging.RequestIdMiddleware",
    "kamen_portal.ops.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # The staff audit trail: the request's user and client address.
    "members.audit.AuditMiddleware",
    "members.middleware.MemberLocaleMiddleware",
    "members.middleware.MemberTimezoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "allauth.usersessions.middleware.UserSessionsMiddleware",
    "members.middleware.StaffMfaMiddleware",
    # Last, so it sees the outcome of authentication in the views above.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "kamen_portal.urls"
WSGI_APPLICATION = "kamen_portal.wsgi.application"

FORM_RENDERER = "django.forms.renderers.TemplatesSetting"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "django.template.context_processors.tz",
                "csp.context_processors.nonce",
                "members.context_processors.portal",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {"default": _env.db_url_config(DATABASE_URL)}
    DATABASES["default"]["CONN_MAX_AGE"] = env_int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
else:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": DATA_DIR / "db.sqlite3",
            # Web, worker and beat share the file: wait for locks instead of
            # failing at once, and let readers go on while one writes.
            "OPTIONS": {
                "timeout": 20,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache and Redis --------------------------------------------------------
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "kamen",
        }
    }
else:
    # File-based so web, worker and beat processes see the same rate limits.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(DATA_DIR / "cache"),
        }
    }

# --- Accounts ---------------------------------------------------------------
AUTH_USER_MODEL = "members.User"
SITE_ID = 1

AUTHENTICATION_BACKENDS = [
    # Axes first: it refuses locked-out credentials before any check runs.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "dashboard"
ACCOUNT_LOGOUT_REDIRECT_URL = "home"

ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_CHANGE_EMAIL = True
# Our own security notices replace allauth's (members/services/security_notices.py).
ACCOUNT_EMAIL_NOTIFICATIONS = False
ACCOUNT_EMAIL_CONFIRMATION_EXPIRE_DAYS = 3
ACCOUNT_EMAIL_SUBJECT_PREFIX = ""
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "http" if DEBUG else "https"
ACCOUNT_PREVENT_ENUMERATION = True
ACCOUNT_ADAPTER = "members.adapters.AccountAdapter"
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
# Active sessions (device, IP, last seen) and "sign out other sessions".
USERSESSIONS_TRACK_ACTIVITY = True
# Staff must have two-factor authentication before they can open the admin.
# On by default in production; the embedded trial (DEBUG) leaves it off.
# Staff who have it must pass it in the session that opens the admin, either
# way (kamen_portal.staff_gate).
ADMIN_REQUIRE_MFA = env_bool("ADMIN_REQUIRE_MFA", default=not DEBUG)
MFA_TOTP_ISSUER = "Kamen"
# The code forms count wrong codes as failed sign-ins for django-axes and
# refuse every code while axes holds the account locked out.
MFA_FORMS = {
    "authenticate": "members.forms.AuthenticateForm",
    "reauthenticate": "members.forms.ReauthenticateForm",
}

# Brute-force protection on every login (allauth and admin).
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_USERNAME_CALLABLE = "members.security.axes_username"
AXES_LOCKOUT_TEMPLATE = "errors/locked_out.html"
AXES_RESET_ON_SUCCESS = True
# Client IP for lock-outs and sign-in history (members.security.client_ip):
# behind PROXY_COUNT trusted proxies, read X-Forwarded-For from the right;
# with none, only REMOTE_ADDR, so a header cannot dodge a lock-out.
PROXY_COUNT = env_int("PROXY_COUNT", default=0)
AXES_CLIENT_IP_CALLABLE = "members.security.client_ip"

# --- Staff audit trail (django-auditlog; see members/audit.py) ---------------
# Every save of these models is recorded with who, when, before -> after and
# the client address; supervisors read it in admin, nobody edits it.
AUDITLOG_INCLUDE_TRACKING_MODELS = (
    {
        "model": "members.user",
        "exclude_fields": ["password", "last_login"],
        "m2m_fields": ["groups", "user_permissions"],
    },
    "members.memberprofile",
    {"model": "auth.group", "m2m_fields": ["permissions"]},
    {"model": "compensation.node", "exclude_fields": ["token_hash"]},
    "compensation.policy",
    {"model": "compensation.incident", "exclude_fields": ["updated_at"], "m2m_fields": ["nodes"]},
    "compensation.membershipadjustment",
    {"model": "appeals.appeal", "exclude_fields": ["updated_at"]},
    "appeals.reasontemplate",
)
AUDITLOG_STORE_JSON_CHANGES = True

# --- Internationalisation ---------------------------------------------------
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
TIME_ZONE = "Asia/Shanghai"
USE_TZ = True

# --- Static and media -------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(DATA_DIR / "media")))
# Uploaded evidence is private: it is never served under a public URL, only
# through permission-checked views.
MEDIA_URL = "/private-media-not-served/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG
if DEBUG:
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # silences whitenoise until collectstatic
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

# --- Email ------------------------------------------------------------------
EMAIL_URL = env_str("EMAIL_URL")
if EMAIL_URL:
    # EMAIL_BACKEND, EMAIL_HOST, EMAIL_PORT, EMAIL_HOST_USER, ... from one URL.
    globals().update(_env.email_url_config(EMAIL_URL))
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Kamen 会员中心 <noreply@kamen.example>")
SERVER_EMAIL = env_str("SERVER_EMAIL", DEFAULT_FROM_EMAIL)

# --- Security ---------------------------------------------------------------
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
if env_bool("BEHIND_TLS_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        # Django admin and Swagger UI set a few inline style attributes.
        "style-src": [SELF, "'unsafe-inline'"],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
        "base-uri": [SELF],
        "object-src": [NONE],
    }
}

# --- REST API ---------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "kamen_portal.api.CsrfSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # Hostile bodies (deep or non-object JSON, broken multipart) are a 400
    # with a stable code, never a 500; every error has one shape.
    "DEFAULT_PARSER_CLASSES": [
        "kamen_portal.api.JSONObjectParser",
        "kamen_portal.api.FormParser",
        "kamen_portal.api.MultiPartParser",
    ],
    "EXCEPTION_HANDLER": "kamen_portal.api.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "kamen_portal.api.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.UserRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "user": env_str("API_THROTTLE_RATE", "600/minute"),
        "anon": "60/minute",
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Kamen member portal API",
    "DESCRIPTION": "Member self-service and service-node API of the Kamen portal.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Separate request components, so uploads are documented as binary files
    # (multipart, format: binary) rather than as the URLs responses carry.
    "COMPONENT_SPLIT_REQUEST": True,
    # Rules serializers cannot express (either/or fields, per-item checks).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "compensation.api.schema.heartbeat_items_are_checked_one_by_one",
        "appeals.api.schema.appeal_request_rules",
    ],
    "ENUM_NAME_OVERRIDES": {
        "AppealStatusEnum": "appeals.models.AppealStatus",
        "DisconnectStatusEnum": "compensation.models.DisconnectStatus",
        "MemberStatusEnum": "members.models.MemberStatus",
        "EventTypeEnum": "integrations.models.EventType",
        # The member's preferred language and the assistant's answer language.
        "LanguageEnum": [code for code, _name in LANGUAGES],
        # Two different "state" fields: a heartbeat's and a status component's.
        "HeartbeatStateEnum": ["alive", "ended"],
        "ComponentStateEnum": "compensation.api.status.STATES",
    },
}

# --- Celery -----------------------------------------------------------------
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # Longer than any task's retry delay and time limit, so a late-acked
        # task is not redelivered while it is still legitimately running.
        "visibility_timeout": 3 * 3600,
    }
else:
    _queue_dir = DATA_DIR / "celery" / "queue"
    _queue_dir.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        # Broadcast (worker control) messages: kept under var/, not the cwd.
        "control_folder": str(DATA_DIR / "celery" / "control"),
        "store_processed": False,
    }
# Queues by urgency: the 30-second detection pass drains on its own queue,
# so a 100,000-member payout or e-mail fan-out (thousands of messages) can
# never sit in front of it. Give each queue its own worker in production
# (README, docs/deployment.md section 6); `make run` has one worker consume
# them all. The default queue keeps Celery's name, `celery`, so messages
# queued before an upgrade are still consumed.
CELERY_QUEUE_DETECTION = "detection"
CELERY_QUEUE_PAYOUTS = "payouts"
CELERY_QUEUE_NOTIFICATIONS = "notifications"
CELERY_QUEUE_EXPORTS = "exports"
CELERY_QUEUE_WEBHOOKS = "webhooks"
CELERY_QUEUE_DEFAULT = "celery"
CELERY_QUEUES_ALL = (
    CELERY_QUEUE_DETECTION,
    CELERY_QUEUE_PAYOUTS,
    CELERY_QUEUE_NOTIFICATIONS,
    CELERY_QUEUE_EXPORTS,
    CELERY_QUEUE_WEBHOOKS,
    CELERY_QUEUE_DEFAULT,
)
CELERY_TASK_DEFAULT_QUEUE = CELERY_QUEUE_DEFAULT
# Declared, so a worker started without -Q consumes every queue (the embedded
# `make run`, and a worker started from an older guide) and nothing is stranded.
CELERY_TASK_QUEUES = tuple(Queue(q, Exchange(q), routing_key=q) for q in CELERY_QUEUES_ALL)
CELERY_TASK_ROUTES = {
    # Detection: the pass itself (it also sweeps stalled payouts and lost
    # work, re-enqueueing it onto the queues below) and the worker liveness
    # mark, which readiness and operators read to see that workers consume.
    "compensation.tasks.detect_disconnects": {"queue": CELERY_QUEUE_DETECTION},
    "members.tasks.record_worker_heartbeat": {"queue": CELERY_QUEUE_DETECTION},
    # Payouts: one credit per closed disconnect (thousands after a regional
    # outage), incident payouts and their chunks.
    "compensation.tasks.compensate_disconnect": {"queue": CELERY_QUEUE_PAYOUTS},
    "compensation.tasks.compensate_disconnects": {"queue": CELERY_QUEUE_PAYOUTS},
    "compensation.tasks.pay_incident": {"queue": CELERY_QUEUE_PAYOUTS},
    "compensation.tasks.pay_incident_chunk": {"queue": CELERY_QUEUE_PAYOUTS},
    # Notifications: recording notices for everyone an incident touched,
    # sending e-mail, the outbox relay, reminders and the staff digest.
    "compensation.tasks.notify_incident": {"queue": CELERY_QUEUE_NOTIFICATIONS},
    "compensation.tasks.notify_status_update": {"queue": CELERY_QUEUE_NOTIFICATIONS},
    "appeals.tasks.remind_appeal_windows": {"queue": CELERY_QUEUE_NOTIFICATIONS},
    "appeals.tasks.send_staff_digest": {"queue": CELERY_QUEUE_NOTIFICATIONS},
    "members.tasks.send_notification_emails": {"queue": CELERY_QUEUE_NOTIFICATIONS},
    "members.tasks.send_notification_email": {"queue": CELERY_QUEUE_NOTIFICATIONS},
    "members.tasks.relay_notifications": {"queue": CELERY_QUEUE_NOTIFICATIONS},
    # Exports: minutes of ZIP building per member request.
    "members.tasks.build_export": {"queue": CELERY_QUEUE_EXPORTS},
    # Outbound webhooks wait on other people's servers (up to their timeout):
    # their own queue, so a slow receiver never delays e-mails or payouts.
    "integrations.tasks.deliver_webhooks": {"queue": CELERY_QUEUE_WEBHOOKS},
    "integrations.tasks.sweep_webhook_deliveries": {"queue": CELERY_QUEUE_WEBHOOKS},
    "members.tasks.expire_exports": {"queue": CELERY_QUEUE_EXPORTS},
    "members.tasks.sweep_exports": {"queue": CELERY_QUEUE_EXPORTS},
    # Short periodic housekeeping on the default queue. A new task must be
    # given a queue here (kamen_portal/tests/test_queues.py checks).
    "compensation.tasks.publish_ledger_head": {"queue": CELERY_QUEUE_DEFAULT},
    "compensation.tasks.sample_usage": {"queue": CELERY_QUEUE_DEFAULT},
}
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_TIMEZONE = TIME_ZONE
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE = {
    "worker-heartbeat": {"task": "members.tasks.record_worker_heartbeat", "schedule": 60.0},
    "detect-disconnects": {
        "task": "compensation.tasks.detect_disconnects",
        "schedule": 30.0,
        # A pass older than its interval is stale: the next one does its work.
        "options": {"expire_seconds": 25},
    },
    "publish-ledger-head": {"task": "compensation.tasks.publish_ledger_head", "schedule": 3600.0},
    # The outbox relay: emails whose enqueue was lost are sent anyway.
    "relay-notifications": {"task": "members.tasks.relay_notifications", "schedule": 60.0},
    "expire-exports": {"task": "members.tasks.expire_exports", "schedule": 3600.0},
    # Exports whose enqueue was lost or whose worker died are queued again.
    "sweep-exports": {"task": "members.tasks.sweep_exports", "schedule": 120.0},
    "remind-appeal-windows": {
        "task": "appeals.tasks.remind_appeal_windows",
        "schedule": 600.0,
    },
    "staff-digest": {
        "task": "appeals.tasks.send_staff_digest",
        "schedule": crontab(hour=9, minute=0),
    },
    # Webhook retries that are due, and deliveries whose enqueue was lost or
    # whose worker died mid-send (integrations.services.webhooks).
    "sweep-webhook-deliveries": {
        "task": "integrations.tasks.sweep_webhook_deliveries",
        "schedule": 15.0,
        "options": {"expire_seconds": 14},
    },
}

# --- Logging ----------------------------------------------------------------
# JSON lines in production (for log shippers), readable text when debugging.
LOG_FORMAT = env_str("LOG_FORMAT", "text" if DEBUG else "json")
if LOG_FORMAT not in ("json", "text"):
    raise ImproperlyConfigured("LOG_FORMAT must be 'json' or 'text'.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "kamen_portal.logging.RequestIdFilter"}},
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {"()": "kamen_portal.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "axes": {"level": "WARNING"},
        # Subsetting the receipt font logs every glyph at INFO.
        "fontTools": {"level": "WARNING"},
    },
}
# Celery workers keep Django's logging configuration (and the request id).
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

PORTAL_NAME = _("Kamen member portal")

# --- Heartbeat ingest --------------------------------------------------------
# Requests per node (each up to 1,000 heartbeats).
NODE_THROTTLE_RATE = env_str("NODE_THROTTLE_RATE", "1200/minute")
HEARTBEAT_MAX_BODY_BYTES = 2 * 1024 * 1024
# Absolute links in emails.
PORTAL_BASE_URL = env_str("PORTAL_BASE_URL", "http://127.0.0.1:8000")
EMAIL_MESSAGE_ID_DOMAIN = env_str("EMAIL_MESSAGE_ID_DOMAIN", "kamen.example")
# The font of PDF receipts: Noto Sans CJK from Debian's fonts-noto-cjk (an
# OpenType collection; the Simplified Chinese face is picked by name).
RECEIPT_PDF_FONT = env_str(
    "RECEIPT_PDF_FONT", "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"
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

# --- Integrations (docs/integration.md) ------------------------------------------
# Entitlement look-ups by nodes, per node (a batch of up to 1,000 counts once).
ENTITLEMENT_THROTTLE_RATE = env_str("ENTITLEMENT_THROTTLE_RATE", "12000/minute")
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
