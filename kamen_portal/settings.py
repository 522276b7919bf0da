"""Settings for the Kamen member portal: one module, driven by environment variables.

With nothing set it runs embedded (SQLite, local files, Celery on the
filesystem broker, console email). Production sets DEBUG=false, SECRET_KEY,
ALLOWED_HOSTS, DATABASE_URL, REDIS_URL and EMAIL_URL; see README.md.
"""

from datetime import timedelta
from pathlib import Path

import environ
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from .api_settings import REST_FRAMEWORK, SPECTACULAR_SETTINGS  # noqa: F401

# Queues by urgency, task routes and the beat schedule (see that module).
from .celery_routing import (  # noqa: F401  (settings: read by name)
    CELERY_BEAT_SCHEDULE,
    CELERY_QUEUE_DEFAULT,
    CELERY_QUEUE_DETECTION,
    CELERY_QUEUE_EXPORTS,
    CELERY_QUEUE_NOTIFICATIONS,
    CELERY_QUEUE_PAYOUTS,
    CELERY_QUEUE_WEBHOOKS,
    CELERY_QUEUES_ALL,
    CELERY_TASK_DEFAULT_QUEUE,
    CELERY_TASK_QUEUES,
    CELERY_TASK_ROUTES,
)
from .env import env_bool, env_int, env_list, env_str

# The product's own knobs (see that module).
from .product_settings import (  # noqa: F401  (settings: read by name)
    ALERT_OUTAGE_LOOKBACK_MINUTES,
    ALERTMANAGER_TOKEN,
    APPEAL_REMINDER_HOURS_BEFORE,
    APPEAL_REVIEWER_LIMIT_MINUTES,
    CARD_KEY_IP_FAILURE_LIMIT,
    CARD_KEY_LOCKOUT_MINUTES,
    CARD_KEY_MEMBER_FAILURE_LIMIT,
    CARD_KEY_PEPPER,
    EMAIL_MESSAGE_ID_DOMAIN,
    EMAIL_RETRY_HOURS,
    EMAIL_RETRY_MAX_DELAY,
    ENTITLEMENT_CACHE_SECONDS,
    ENTITLEMENT_SCOPE_DAYS,
    ENTITLEMENT_THROTTLE_RATE,
    HEARTBEAT_MAX_BODY_BYTES,
    INTEGRATION_THROTTLE_RATE,
    LEDGER_LOG_KEY_FILE,
    LEDGER_LOG_ORIGIN,
    LEDGER_LOG_PREVIOUS_KEYS,
    LEDGER_LOG_SIGNING_KEY,
    LEDGER_LOG_WITNESS_KEYS,
    MEMBERSHIP_EVENTS_UNKNOWN_MEMBERS,
    METRICS_TOKEN,
    NODE_THROTTLE_RATE,
    PLATFORM_THROTTLE_RATE,
    PORTAL_BASE_URL,
    RECEIPT_PDF_FONT,
    TIME_INPUT_MAX_YEAR,
    TIME_INPUT_MIN_YEAR,
    WEBHOOK_ALLOWED_PRIVATE_NETWORKS,
    WEBHOOK_DISABLE_AFTER_FAILURES,
    WEBHOOK_DISABLE_AFTER_SECONDS,
    WEBHOOK_MAX_ATTEMPTS,
    WEBHOOK_RETRY_BASE_SECONDS,
    WEBHOOK_RETRY_MAX_SECONDS,
    WEBHOOK_TIMEOUT_SECONDS,
)

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
    # Ahead of the admin: bounds every admin date-time field (kamen_portal/timeinput.py).
    "kamen_portal.apps.KamenPortalConfig",
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
            "BACKEND": "kamen_portal.cache.RedisCache",
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
    # Tokens and signing secrets: who issued, rotated or revoked what; the
    # hash or secret itself never enters the trail (the prefix does).
    {"model": "compensation.platform", "exclude_fields": ["token_hash"]},
    {"model": "integrations.integrationtoken", "exclude_fields": ["token_hash"]},
    {
        "model": "integrations.webhookendpoint",
        # Delivery health is the system's bookkeeping, not a staff write.
        "exclude_fields": ["secret", "consecutive_failures", "failing_since"],
    },
    "compensation.cardkeybatch",
    "compensation.incidentupdate",
    "sites.site",
    # Staff two-factor devices: removing one is a security change. The
    # encrypted secret and the last use (every sign-in) stay out.
    {"model": "mfa.authenticator", "exclude_fields": ["data", "last_used_at"]},
    "account.emailaddress",
    # Scheduled tasks (detection, sweeps); beat's own run bookkeeping stays out.
    {
        "model": "django_celery_beat.periodictask",
        "exclude_fields": ["last_run_at", "total_run_count", "date_changed"],
    },
    "django_celery_beat.intervalschedule",
    "django_celery_beat.crontabschedule",
    "django_celery_beat.solarschedule",
    "django_celery_beat.clockedschedule",
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
    # Printed decoded, between banners (kamen_portal/console_email.py).
    EMAIL_BACKEND = "kamen_portal.console_email.EmailBackend"
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "卡盟会员中心 <noreply@kamen.example>")
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
# Messages live in the server-side session, not in the default signed (not
# encrypted) cookie: a "shown only now" token or signing secret is a message.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"
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

# --- REST API (kamen_portal/api_settings.py) --------------------------------
# The member's preferred language and the assistant's answer language.
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]["LanguageEnum"] = [code for code, _name in LANGUAGES]

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
    # The host means nothing to this transport; naming one keeps kombu from
    # warning "No hostname was supplied" on every start.
    CELERY_BROKER_URL = "filesystem://localhost/"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        # Broadcast (worker control) messages: kept under var/, not the cwd.
        "control_folder": str(DATA_DIR / "celery" / "control"),
        "store_processed": False,
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
