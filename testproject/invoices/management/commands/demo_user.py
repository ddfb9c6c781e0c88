"""Create the demo's users, or reset their passwords."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser

# (username = password, is staff and superuser)
USERS = [("demo", True), ("other", False)]


class Command(BaseCommand):
    """Make sure the users demo/demo (superuser) and other/other exist."""

    help = "Create the users demo/demo (superuser) and other/other, or reset their passwords."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--url", default="http://127.0.0.1:8000/", help="Where the demo will be served."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        for username, is_admin in USERS:
            # get_or_create then save: running it again only resets what a visitor changed.
            user, created = user_model.objects.get_or_create(username=username)
            user.set_password(username)
            user.is_active = True
            user.is_staff = user.is_superuser = is_admin
            user.save()
            action = "Created" if created else "Reset"
            self.stdout.write(f"{action} user {username!r}.")
        self.stdout.write(
            self.style.SUCCESS(
                f"Log in at {options['url']} as demo / demo (admin at {options['url']}admin/); "
                "user other / other owns nothing of yours"
            )
        )
