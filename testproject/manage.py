#!/usr/bin/env python
"""Run Django commands for the demo site."""

from __future__ import annotations

import os
import sys


def main() -> None:
    """Run the command line with the demo settings."""
    # Python puts this script's directory (testproject/) first on sys.path,
    # which is what makes the "demo" and "invoices" packages importable.
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
