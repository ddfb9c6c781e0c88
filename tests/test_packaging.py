"""What a release carries: the license, an sdist that runs its tests, a wheel, a driver by choice.

The sdist and the wheel are built from a copy of this tree, and installed
into throwaway virtualenvs, all without an index: what they need comes from
the wheelhouse ``make install`` fills (.venv/wheelhouse: the build backend,
Django, psycopg2-binary, psycopg 3, and psycopg2 built from source where
pg_config is).
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

REPO = Path(__file__).resolve().parent.parent
WHEELHOUSE = Path(sys.prefix) / "wheelhouse"
INSTALLED = Path(__file__).resolve().parent / "installed"

pytestmark = pytest.mark.skipif(
    not WHEELHOUSE.is_dir(),
    reason=f"no {WHEELHOUSE}: 'make install' fills it, to build and install without an index",
)


def run(command: list, **kwargs) -> subprocess.CompletedProcess:
    """Run a command to its end; fail the test with its output if it fails."""
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, **kwargs)
    assert result.returncode == 0, f"{command}:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result


def offline() -> dict[str, str]:
    """An environment in which pip takes everything from the wheelhouse, and no checkout."""
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    return {**environment, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(WHEELHOUSE)}


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """The directory holding the sdist, and the wheel ``build`` makes from that sdist."""
    source = tmp_path_factory.mktemp("source") / "warehouse-py"
    ignored = shutil.ignore_patterns(
        ".git", ".venv*", ".nox", ".pgdata", ".hypothesis", "build", "dist", "*.egg-info",
        "__pycache__",
    )  # fmt: skip
    shutil.copytree(REPO, source, ignore=ignored)
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--outdir", str(out), str(source)], env=offline())
    return out


def sdist(dist: Path) -> Path:
    [path] = dist.glob("warehouse_py-*.tar.gz")
    return path


def wheel(dist: Path) -> Path:
    [path] = dist.glob("warehouse_py-*.whl")
    return path


def metadata(dist: Path) -> dict:
    with zipfile.ZipFile(wheel(dist)) as archive:
        [name] = [name for name in archive.namelist() if name.endswith(".dist-info/METADATA")]
        return Parser().parsestr(archive.read(name).decode())


def test_the_sdist_carries_the_license_the_changelog_and_what_its_tests_need(dist):
    with tarfile.open(sdist(dist)) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {
        "LICENSE",
        "CHANGELOG.rst",
        "README.rst",
        "Makefile",
        "dev_database.py",
        "tests/settings.py",
        "tests/conftest.py",
        "tests/factories.py",
        "tests/migrations/0001_initial.py",
        "tests/appless/site.py",
        "tests/installed/site.py",
    } <= names


def test_the_unpacked_sdist_runs_its_own_tests(dist, tmp_path):
    with tarfile.open(sdist(dist)) as archive:
        archive.extractall(tmp_path, filter="data")
    [unpacked] = tmp_path.iterdir()
    environment = {**offline(), "PYTHONPATH": str(unpacked), "DATABASE_URL": settings.DATABASE_URL}
    where = run(
        [sys.executable, "-c", "import warehouse, tests; print(warehouse.__file__)"],
        cwd=unpacked,
        env=environment,
    )
    assert Path(where.stdout.strip()).is_relative_to(unpacked)
    suite = ["tests/test_without_the_app.py", "tests/test_checks.py"]
    result = run([sys.executable, "-m", "pytest", "-q", *suite], cwd=unpacked, env=environment)
    assert re.search(r"^\d+ passed", result.stdout.splitlines()[-1])


def test_the_wheel_carries_the_license_and_the_package_alone(dist):
    with zipfile.ZipFile(wheel(dist)) as archive:
        names = archive.namelist()
    [info] = {name.split("/")[0] for name in names if ".dist-info/" in name}
    assert f"{info}/licenses/LICENSE" in names
    assert "warehouse/py.typed" in names
    assert {name.split("/")[0] for name in names} == {"warehouse", info}
    assert "warehouse/testing.py" not in names


def test_the_metadata_gives_the_license_expression_and_the_typing(dist):
    found = metadata(dist)
    assert found["License-Expression"] == "BSD-3-Clause"
    assert found.get_all("License-File") == ["LICENSE"]
    assert "Typing :: Typed" in found.get_all("Classifier")


def test_the_metadata_asks_for_a_driver_only_through_an_extra(dist):
    required = metadata(dist).get_all("Requires-Dist")
    drivers = [line for line in required if line.startswith("psycopg")]
    assert sorted(drivers) == [
        'psycopg2-binary>=2.9; extra == "binary"',
        'psycopg2>=2.9; extra == "source"',
    ]


@pytest.fixture
def database(db) -> str:
    """The test database's settings, as JSON for a process of its own."""
    keys = ("ENGINE", "NAME", "USER", "PASSWORD", "HOST", "PORT")
    return json.dumps({key: connection.settings_dict[key] for key in keys})


def virtualenv(path: Path) -> Path:
    """A new virtualenv, without pip of its own (this one installs into it); return its python."""
    run([sys.executable, "-m", "venv", "--without-pip", str(path)])
    return path / "bin" / "python"


def install(python: Path, dist: Path, *requirements: str) -> None:
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet"]
    # Not byte-compiled: each virtualenv runs one short script.
    options = ["--no-compile", "--find-links", str(dist)]
    run([*pip, *options, *requirements], env={**offline(), "PYTHONDEVMODE": ""})


def run_site(python: Path, script: str, tmp_path: Path, *args: str) -> list[str]:
    """Run a script of tests/installed from a directory of its own; return its lines."""
    shutil.copy(INSTALLED / script, tmp_path / script)
    return run([python, script, *args], cwd=tmp_path, env=offline()).stdout.splitlines()


def test_one_command_installs_warehouse_with_a_working_driver(dist, database, tmp_path):
    python = virtualenv(tmp_path / "venv")
    install(python, dist, "warehouse-py[binary]")
    assert run_site(python, "site.py", tmp_path, database) == [
        "psycopg2 from: psycopg2-binary",
        "read: hello",
    ]


def source_built_psycopg2() -> Path | None:
    return next(WHEELHOUSE.glob("psycopg2-*.whl"), None)


@pytest.mark.skipif(
    source_built_psycopg2() is None,
    reason="make install built no psycopg2 from source (pg_config was not found)",
)
def test_a_site_with_psycopg2_built_from_source_keeps_it(dist, database, tmp_path):
    python = virtualenv(tmp_path / "venv")
    install(python, dist, str(source_built_psycopg2()))
    install(python, dist, "warehouse-py")
    assert run_site(python, "site.py", tmp_path, database) == [
        "psycopg2 from: psycopg2",
        "read: hello",
    ]


def test_a_site_with_psycopg3_only_starts_and_is_told_what_to_install(dist, database, tmp_path):
    python = virtualenv(tmp_path / "venv")
    install(python, dist, "warehouse-py", "psycopg[binary]")
    lines = run_site(python, "psycopg3_only.py", tmp_path, database)
    assert [line.split(":")[0] for line in lines] == ["warehouse.W004", "saving"]
    for line in lines:
        assert "pip install 'warehouse-py[binary]'" in line
        assert "pip uninstall psycopg" in line
