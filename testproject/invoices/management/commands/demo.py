"""Run the demo: migrate, make its users, and serve it until stopped."""

from __future__ import annotations

import os
import socket
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser


def port_in_use(host: str, port: int) -> bool:
    """Whether ``runserver`` could not listen on ``host:port``: the same bind, tried first."""
    for family, kind, proto, _, address in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        with socket.socket(family, kind, proto) as probe:
            # As socketserver does: a port left in TIME_WAIT by the last run is free.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError:
                return True
    return False


class Command(BaseCommand):
    """``make demo``: one process, so that however it stops, its database stops with it."""

    help = "Migrate, create the demo users if missing, and serve the demo on HOST:PORT."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=os.environ.get("HOST") or "127.0.0.1")
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT") or 8000))

    def handle(self, *args: Any, host: str, port: int, **options: Any) -> None:
        # Checked first: the login hint must not be printed for a server that cannot start.
        if port_in_use(host, port):
            raise CommandError(
                f"Port {port} on {host} is already in use (another 'make demo'?). Stop that "
                f"server, or choose another port: make demo PORT={port + 1}"
            )
        call_command("migrate", interactive=False, verbosity=0)
        url_host = f"[{host}]" if ":" in host else host
        call_command("demo_user", url=f"http://{url_host}:{port}/")
        # No autoreloader: its second process, killed by the first on Ctrl-C or
        # SIGTERM, could be cut off half-way through its exit.
        call_command("runserver", f"{url_host}:{port}", use_reloader=False, insecure_serving=True)
