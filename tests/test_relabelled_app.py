"""warehouse installed under another label (an AppConfig subclass) migrates, saves and unlinks."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.django_db
def test_a_site_that_installs_the_app_as_files_keeps_its_registry_and_its_lifecycle():
    keys = ("ENGINE", "NAME", "USER", "PASSWORD", "HOST", "PORT")
    database = {key: connection.settings_dict[key] for key in keys}
    result = subprocess.run(
        [sys.executable, str(REPO / "tests" / "relabelled" / "site.py"), json.dumps(database)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.stderr == ""
    assert result.stdout.splitlines() == [
        "migrated: files_storedfile True",
        "registered: True",
        "replaced: True",
        "deleted: True",
    ]
