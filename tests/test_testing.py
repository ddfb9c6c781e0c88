"""DATABASE_URL becomes a DATABASES entry."""

import pytest

from warehouse.testing import settings_from_url


def test_a_network_url():
    assert settings_from_url("postgresql://ann:s%40cret@db.local:5433/files?sslmode=require") == {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "files",
        "USER": "ann",
        "PASSWORD": "s@cret",
        "HOST": "db.local",
        "PORT": "5433",
        "OPTIONS": {"sslmode": "require"},
    }


def test_a_socket_directory_in_the_query_is_the_host():
    settings = settings_from_url("postgresql://postgres:@/postgres?host=/tmp/pg")
    assert (settings["HOST"], settings["NAME"], settings["OPTIONS"]) == ("/tmp/pg", "postgres", {})


def test_another_scheme_is_refused():
    with pytest.raises(ValueError, match="postgresql://"):
        settings_from_url("mysql://localhost/db")
