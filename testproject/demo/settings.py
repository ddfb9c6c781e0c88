"""Settings of the demo site: never use these in production."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# testproject/demo/settings.py -> the repository root.
REPO_ROOT = Path(__file__).resolve().parents[2]

# The database of development (dev_database.py) sits at the root, outside the package.
if str(REPO_ROOT) not in sys.path:
    sys.path.append(str(REPO_ROOT))

from dev_database import database_settings  # noqa: E402

# Demo only: the site runs on 127.0.0.1, so the key protects nothing.
SECRET_KEY = "demo-only-not-secret"
# Off, so that a missing or forbidden file shows the demo's 404.html / 403.html as a
# site would; DEBUG=1 for Django's pages with tracebacks.
DEBUG = os.environ.get("DEBUG") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]", os.environ.get("HOST") or "127.0.0.1"]

# DATABASE_URL wins; otherwise an embedded PostgreSQL whose data lives in
# .pgdata/demo (DEMO_PGDATA), so invoices survive restarts. It stops with the
# last process using it.
DATABASES = {
    "default": database_settings(os.environ.get("DEMO_PGDATA") or REPO_ROOT / ".pgdata" / "demo")
}

# Both are the defaults; written out so the demo shows where files are read and written.
WAREHOUSE_DB_FOR_READ = "default"
WAREHOUSE_DB_FOR_WRITE = "default"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "warehouse",
    "invoices",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# Uploads go straight into large objects: no temporary file, and saving adopts them.
FILE_UPLOAD_HANDLERS = ["warehouse.uploads.DbFileUploadHandler"]

ROOT_URLCONF = "demo.urls"
WSGI_APPLICATION = "demo.wsgi.application"

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

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "invoices:list"
LOGOUT_REDIRECT_URL = "login"

USE_TZ = True
TIME_ZONE = "UTC"
STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
