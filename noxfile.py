"""Run the test suite on the Django versions setup.cfg's classifiers name (``make matrix``).

Each session installs warehouse with psycopg2-binary and its test extra in a
fresh virtualenv and runs pytest as ``make test`` does. Interpreters installed
by pyenv are found even when pyenv's shims are not set up for them; a Python
missing from the machine makes its session skip. ``nox -s lint`` runs ruff.
"""

from __future__ import annotations

import os
from pathlib import Path

import nox

# pyenv's shims answer only for its active versions; put every installed
# version's bin directory first so that nox finds python3.10, python3.13, ...
_PYENV_ROOT = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
os.environ["PATH"] = os.pathsep.join(
    [*map(str, sorted(_PYENV_ROOT.glob("versions/*/bin"))), os.environ.get("PATH", "")]
)

nox.options.sessions = ["tests"]

LINTED = ["warehouse", "tests", "testproject", "benchmarks", "noxfile.py", "dev_database.py"]


@nox.session
@nox.parametrize(
    ("python", "django"),
    [("3.10", "4.2"), ("3.11", "5.2"), ("3.13", "6.1")],
    ids=["django4.2", "django5.2", "django6.1"],
)
def tests(session: nox.Session, django: str) -> None:
    """Run the suite on the latest release of one Django feature version."""
    session.install("-e", ".[binary,test]", f"Django~={django}.0")
    session.run(
        "python",
        "-W",
        "error::ResourceWarning",
        "-m",
        "pytest",
        *session.posargs,
        env={"PYTHONDEVMODE": "1"},
    )


@nox.session
def lint(session: nox.Session) -> None:
    """Check style and formatting with ruff."""
    session.install("ruff")
    session.run("ruff", "check", *LINTED)
    session.run("ruff", "format", "--check", *LINTED)
