"""Create a login with a role, or reset its password and role.

    manage.py create_login --username ana --role merchandiser --password '…'
    RECSITE_LOGIN_PASSWORD='…' manage.py create_login --username boss --role admin

Prefer the environment variable: a ``--password`` argument is visible to other local users in
the process list and lands in shell history.
"""

import os
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.roles import Role
from accounts.services import user_create_with_role

PASSWORD_ENV = "RECSITE_LOGIN_PASSWORD"


class Command(BaseCommand):
    help = "Create a login with a role (merchandiser or admin), or reset an existing one."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", required=True)
        parser.add_argument("--role", required=True, choices=[role.value for role in Role])
        parser.add_argument(
            "--password", default=None, help=f"Default: the {PASSWORD_ENV} environment variable."
        )
        parser.add_argument("--email", default="")

    def handle(
        self,
        *args: Any,
        username: str,
        role: str,
        password: str | None,
        email: str,
        **options: Any,
    ) -> None:
        username = username.strip()
        if not username:
            raise CommandError("--username: must not be empty")
        if password is None:
            password = os.environ.get(PASSWORD_ENV) or None
        if not password:
            raise CommandError(f"--password: give a password, or set {PASSWORD_ENV}")
        user_model = get_user_model()
        try:
            # Django's password validators (length, common, numeric, similar to the username).
            validate_password(password, user_model(username=username, email=email))
        except ValidationError as exc:
            raise CommandError(f"--password: {' '.join(exc.messages)}") from None
        existed = user_model.objects.filter(username=username).exists()
        user = user_create_with_role(
            username=username, password=password, role=Role(role), email=email
        )
        action = "Reset the password and role of" if existed else "Created"
        self.stdout.write(f"{action} login {user.get_username()!r} with role {role}.")
