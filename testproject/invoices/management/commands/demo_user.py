"""Create the demo's users if they are missing; never touch an existing one's password."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser

# (username = first password, is staff and superuser)
USERS = [("demo", True), ("other", False)]


class Command(BaseCommand):
    """Make sure the users demo (superuser) and other exist, and say how to log in."""

    help = "Create the users demo/demo (superuser) and other/other unless they exist."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--url", default="http://127.0.0.1:8000/", help="Where the demo will be served."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        for username, is_admin in USERS:
            # Only created: a password changed in the demo survives every restart, and
            # the sessions of logged-in users stay valid (they hash the password).
            user, created = user_model.objects.get_or_create(
                username=username, defaults={"is_staff": is_admin, "is_superuser": is_admin}
            )
            if created:
                user.set_password(username)
                user.save(update_fields=["password"])
                self.stdout.write(f"Created user {username!r} with the password {username!r}.")
        url = options["url"]
        self.stdout.write(
            self.style.SUCCESS(
                f"Log in at {url} as demo / demo (admin at {url}admin/); user other / other "
                "owns nothing of yours. Passwords changed since are kept. Stop with Ctrl-C."
            )
        )
