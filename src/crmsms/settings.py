"""Django settings for crmsms.

Everything an operator may change comes from environment variables (DESIGN §6), read with
the small helpers below; the defaults give a working embedded set-up (SQLite files and an
outbox under ``./var``) with no configuration at all.
"""

import os
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url


def env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def envint(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def envbool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


BASE_DIR = Path(__file__).resolve().parent
DATA_DIR = Path(env("CRMSMS_DATA_DIR", "./var")).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)

# A secret is generated once per data dir so that a fresh clone works without set-up,
# and sessions survive restarts. Production sets CRMSMS_SECRET_KEY.
_secret_file = DATA_DIR / "secret_key"


def _secret_key() -> str:
    if env("CRMSMS_SECRET_KEY"):
        return env("CRMSMS_SECRET_KEY")
    if not _secret_file.exists():
        import secrets

        _secret_file.write_text(secrets.token_urlsafe(50))
        _secret_file.chmod(0o600)
    return _secret_file.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = envbool("CRMSMS_DEBUG", False)
# Where people and providers reach crmsms (callback URLs are built on it): its host is
# always allowed, and its origin trusted for forms.
CRMSMS_PUBLIC_URL = env("CRMSMS_PUBLIC_URL", "http://127.0.0.1:8000")
_public = urlsplit(CRMSMS_PUBLIC_URL)
ALLOWED_HOSTS = [h for h in env("CRMSMS_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",") if h]
ALLOWED_HOSTS += [_public.hostname] if _public.hostname and _public.hostname not in ALLOWED_HOSTS else []
CSRF_TRUSTED_ORIGINS = [o for o in env("CRMSMS_CSRF_TRUSTED_ORIGINS", "").split(",") if o]
CSRF_TRUSTED_ORIGINS += [f"{_public.scheme}://{_public.netloc}"] if _public.hostname else []

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "huey.contrib.djhuey",
    "ninja",  # serves the API docs' JavaScript itself instead of from a CDN
    "crmsms.users",
    "crmsms.crm",
    "crmsms.sms",
    "crmsms.web",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "crmsms.users.middleware.LoginRequiredMiddleware",
    "crmsms.users.middleware.UserTimezoneMiddleware",
    "crmsms.users.middleware.ConsentSourceMiddleware",
]

ROOT_URLCONF = "crmsms.urls"
WSGI_APPLICATION = "crmsms.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "crmsms.sms.context_processors.provider_pauses",
            ],
        },
    },
]

# --- Database: SQLite in the data dir unless DATABASE_URL says otherwise -------------------
_sqlite_options = {
    # IMMEDIATE takes the write lock when a transaction starts, so a read-then-update
    # (claiming due messages) cannot interleave with another writer: SQLite's equivalent
    # of SELECT ... FOR UPDATE. WAL lets readers go on while one process writes.
    "transaction_mode": "IMMEDIATE",
    "timeout": 30,
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
}
if env("DATABASE_URL"):
    # A kept connection is checked (one round trip) before its first use in each task,
    # dispatcher pass or request: after a database restart, a worker's idle connections are
    # dead, and its next batch must not fail on one.
    DATABASES = {"default": dj_database_url.parse(env("DATABASE_URL"), conn_max_age=envint("CRMSMS_CONN_MAX_AGE", 60),
                                                  conn_health_checks=True)}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(DATA_DIR / "crmsms.sqlite3"),
        }
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update(_sqlite_options)
    # Each web and worker thread keeps its connection (opening one, with its PRAGMAs, cost
    # a delivery report's webhook a fifth of its time).
    DATABASES["default"]["CONN_MAX_AGE"] = envint("CRMSMS_CONN_MAX_AGE", 60)
    # Tests use a file, not :memory:, so that real worker processes can share it.
    DATABASES["default"]["TEST"] = {"NAME": env("CRMSMS_TEST_DB", str(DATA_DIR / "test.sqlite3"))}
else:
    DATABASES["default"].setdefault("TEST", {})["NAME"] = env("CRMSMS_TEST_DB", "test_crmsms")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Task engine: huey on SQLite in the data dir, or Redis with HUEY_URL -------------------
if env("HUEY_URL"):
    HUEY = {
        "huey_class": "huey.RedisHuey",
        "name": "crmsms",
        "url": env("HUEY_URL"),
        "immediate": False,
    }
else:
    HUEY = {
        "huey_class": "huey.SqliteHuey",
        "name": "crmsms",
        "filename": str(DATA_DIR / "huey.sqlite3"),
        "immediate": False,
    }
# Where the provider accounts' rate limits are counted for all workers (sms/ratelimit.py):
# the task engine's Redis unless another is named; none with the SQLite task engine.
CRMSMS_REDIS_URL = env("CRMSMS_REDIS_URL", env("HUEY_URL", ""))

# --- Auth, i18n, time ---------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "/login/"
# Password guessing: this many failed logins for one username within the window block it
# until the window has passed (users/login.py).
CRMSMS_LOGIN_MAX_FAILURES = envint("CRMSMS_LOGIN_MAX_FAILURES", 5)
CRMSMS_LOGIN_WINDOW_MINUTES = envint("CRMSMS_LOGIN_WINDOW_MINUTES", 15)
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"

LANGUAGE_CODE = "en"
USE_I18N = True
USE_TZ = True
TIME_ZONE = "UTC"  # storage; users see their own zone (Profile.time_zone)
CRMSMS_DEFAULT_TIME_ZONE = env("CRMSMS_TIME_ZONE", "Europe/Paris")

STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
WHITENOISE_USE_FINDERS = True  # serve app static files without a collectstatic step

# --- SMS ----------------------------------------------------------------------------------
CRMSMS_DEFAULT_REGION = env("CRMSMS_DEFAULT_REGION", "FR").upper()
CRMSMS_SMS_URL = env("CRMSMS_SMS_URL", f"file://{DATA_DIR / 'outbox.jsonl'}")
# Other providers by destination prefix, e.g. "+33=kannel://...;+44=vonage://..." (the
# longest matching prefix wins; other numbers go through CRMSMS_SMS_URL).
CRMSMS_SMS_ROUTES = env("CRMSMS_SMS_ROUTES", "")
# How {{ today }} is written in messages (strftime). Default: 26/11/2026.
CRMSMS_DATE_FORMAT = env("CRMSMS_DATE_FORMAT", "%d/%m/%Y")
# How long a worker may hold claimed messages before they are treated as abandoned.
CRMSMS_LEASE_SECONDS = envint("CRMSMS_LEASE_SECONDS", 120)
# A claimed batch not picked up by a sending thread within this many seconds (its task lost
# with Redis's queue) is queued again.
CRMSMS_PICKUP_SECONDS = envint("CRMSMS_PICKUP_SECONDS", 30)
# One worker runs the periodic jobs (sms/periodic.py); another takes them over once it has
# not renewed its lease for this long. Keep the workers' clocks in sync (NTP).
CRMSMS_PERIODIC_LEASE_SECONDS = envint("CRMSMS_PERIODIC_LEASE_SECONDS", 30)
# Due messages a worker claims at once. A sending thread that goes on with a backlog claims
# its next batch itself, while its last chunk's calls are out: at least this many, and two
# of its chunks (see CRMSMS_MAX_CALL_CHUNK).
CRMSMS_BATCH_SIZE = envint("CRMSMS_BATCH_SIZE", 50)
# A campaign generation whose worker wrote no heartbeat for this long is resumed by another.
CRMSMS_GENERATION_STALE_SECONDS = envint("CRMSMS_GENERATION_STALE_SECONDS", 60)
# Recipients a campaign's generation reads and writes per transaction.
CRMSMS_GENERATION_BATCH = envint("CRMSMS_GENERATION_BATCH", 2000)
# A message sent through a provider that sends delivery reports, with no final report after
# this long, becomes "unknown" (expired): never "delivered" by default.
CRMSMS_REPORT_EXPIRY_HOURS = envint("CRMSMS_REPORT_EXPIRY_HOURS", 72)
# Words that, as the first word of a reply, opt the number out of every record that has it
# (compared without case or accents), opt it in again (only if CRMSMS_START_RESUBSCRIBES),
# or ask for help.
CRMSMS_STOP_WORDS = env("CRMSMS_STOP_WORDS", "STOP,STOPALL,UNSUBSCRIBE,CANCEL,END,QUIT,ARRET,ARRÊT,DESABONNER")
CRMSMS_START_WORDS = env("CRMSMS_START_WORDS", "START,UNSTOP")
CRMSMS_START_RESUBSCRIBES = envbool("CRMSMS_START_RESUBSCRIBES", False)
CRMSMS_HELP_WORDS = env("CRMSMS_HELP_WORDS", "HELP,AIDE")
# Sent back, at once, to a number that asked for HELP ("" = no automatic answer: the reply
# waits on the records' timeline for a person). At most one per number per hour, so two
# automatic responders cannot talk to each other forever.
CRMSMS_HELP_REPLY = env("CRMSMS_HELP_REPLY", "Reply STOP to receive no more SMS from us.")
# Messages whose attempt is committed together before calling a provider that answers in
# 100 ms or more: a worker that dies mid-call leaves at most two chunks "unknown" per
# sending thread (the one being called, the one before it if not written yet); larger
# chunks commit less often.
CRMSMS_CALL_CHUNK = envint("CRMSMS_CALL_CHUNK", 10)
# A faster provider without a rate limit (a gateway on the local network, such as Kannel, or
# the simulator) gets proportionally larger chunks, up to this many, so that a chunk's calls
# last no longer than CRMSMS_CALL_CHUNK's at 0.1 s per call (0.1 s with 10 calls in
# flight): the database work, not the provider, sets the pace there, and larger chunks
# spend less on it. A worker that dies mid-call then leaves up to two chunks "unknown",
# from the same time of calls. Chunks grow at most twofold from one to the next, and a
# call with an error of the provider's brings them back to CRMSMS_CALL_CHUNK. Set it to
# CRMSMS_CALL_CHUNK to turn this off.
CRMSMS_MAX_CALL_CHUNK = envint("CRMSMS_MAX_CALL_CHUNK", 100)
CRMSMS_MAX_ATTEMPTS = envint("CRMSMS_MAX_ATTEMPTS", 6)
CRMSMS_RETRY_BASE_SECONDS = envint("CRMSMS_RETRY_BASE_SECONDS", 30)
# A provider account whose calls fail in a burst is paused this many seconds, then tried
# with one message; each pause in a row is twice as long (sms/breaker.py). 0: never pause.
CRMSMS_PROVIDER_PAUSE_SECONDS = float(env("CRMSMS_PROVIDER_PAUSE_SECONDS", "30"))
CRMSMS_PROVIDER_TIMEOUT = float(env("CRMSMS_PROVIDER_TIMEOUT", "10"))
# Calls to an HTTP provider in flight at once per sending thread (a chunk of messages is
# sent this many at a time): with 100 ms per answer, one thread sends up to this many
# messages per 100 ms.
CRMSMS_PROVIDER_CONCURRENCY = envint("CRMSMS_PROVIDER_CONCURRENCY", 10)
# A new campaign's sending hours, in each recipient's time zone (sms/sending_hours.py):
# "HH:MM-HH:MM" ("" = new campaigns send at any hour) and the days, mon..sun.
CRMSMS_SENDING_HOURS = env("CRMSMS_SENDING_HOURS", "08:00-20:00")
CRMSMS_SENDING_DAYS = env("CRMSMS_SENDING_DAYS", "mon,tue,wed,thu,fri,sat")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "filters": {"every_10s": {"()": "crmsms.web.logfilters.AtMostEvery", "seconds": 10}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("CRMSMS_LOG_LEVEL", "INFO")},
    "loggers": {"huey": {"level": "WARNING"},
                "waitress.queue": {"filters": ["every_10s"]}},
}
