"""Settings for the test suite: a real PostgreSQL, embedded unless DATABASE_URL names one."""

import os
from pathlib import Path

from dev_database import embedded_server_url, settings_from_url

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "tests-only"
USE_TZ = True
DEBUG = False

# The server's URL, also for the processes some tests start (the unpacked sdist's suite).
DATABASE_URL = os.environ.get("DATABASE_URL") or embedded_server_url(BASE_DIR / ".pgdata" / "test")
_database = settings_from_url(DATABASE_URL)
DATABASES = {
    # One test database per run, so that runs sharing a server (make test beside
    # make matrix) never drop each other's.
    "default": {**_database, "TEST": {"NAME": f"test_warehouse_{os.getpid()}"}},
    # A second connection to the same database: what any other session sees.
    "replica": {**_database, "TEST": {"MIRROR": "default"}},
    # A separate database as the read alias, so that a read on the wrong one fails a test.
    "read_alias": {**_database, "TEST": {"NAME": f"test_warehouse_read_alias_{os.getpid()}"}},
    # The same database as two roles that tests/conftest.py's `roles` fixture creates (roles
    # belong to the whole server, hence the pid): a writer that is no superuser, and a reader.
    **{
        alias: {
            **_database,
            "USER": f"warehouse_{alias}_{os.getpid()}",
            "PASSWORD": "only-for-the-tests",
            "TEST": {"MIRROR": "default"},
        }
        for alias in ("writer", "reader")
    },
}

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.admin",
    "warehouse",
    "tests",
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "tests.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STATIC_URL = "/static/"
