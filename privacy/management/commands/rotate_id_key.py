"""Rotate the key of pseudonymous customer ids: hash every stored id once more under a new key."""

import secrets
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from privacy.context import acting_as
from privacy.services.pseudonyms import id_key_rotate


class Command(BaseCommand):
    help = (
        "Rotate RECSITE_ID_KEY: every stored customer pseudonym is hashed once more under a new "
        "key (the shop's ids are not needed), in one transaction that holds ingestion. Then set "
        "RECSITE_ID_KEY to the printed chain everywhere and restart web and worker processes."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--new-key", help="The new key (default: 32 random bytes, URL-safe base64)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        new_key = options["new_key"] or secrets.token_urlsafe(32)
        if "," in new_key or not new_key.strip():
            raise CommandError("--new-key: a non-empty key without commas")
        with acting_as("command:rotate_id_key"):
            try:
                rotated, chain = id_key_rotate(new_key=new_key)
            except ValueError as exc:
                raise CommandError(str(exc)) from None
        self.stdout.write(f"{rotated:,} customer ids rehashed. Set everywhere, then restart:")
        self.stdout.write(f"RECSITE_ID_KEY={chain}")
