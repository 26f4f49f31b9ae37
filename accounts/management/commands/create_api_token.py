"""Create an API token for a shop back end and print it once.

    manage.py create_api_token --name shop-prod --scopes read,ingest [--expires-days 90]

The raw token is the last line of stdout, so a script can capture it with ``| tail -n 1``.
"""

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from accounts.roles import TOKEN_SCOPES
from accounts.services import TokenScopeError, api_token_create


class Command(BaseCommand):
    help = "Create an API token (scopes: read, ingest, privacy) and print it once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True, help="What uses the token, e.g. shop-prod.")
        parser.add_argument(
            "--scopes",
            required=True,
            help=f"Comma-separated, from: {', '.join(TOKEN_SCOPES)}.",
        )
        parser.add_argument(
            "--expires-days", type=int, default=None, help="Expire after this many days."
        )

    def handle(
        self, *args: Any, name: str, scopes: str, expires_days: int | None, **options: Any
    ) -> None:
        name = name.strip()
        if not name:
            raise CommandError("--name: must not be empty")
        if len(name) > 100:
            raise CommandError(f"--name: at most 100 characters, got {len(name)}")
        scope_list = [s.strip() for s in scopes.split(",") if s.strip()]
        unknown = sorted(set(scope_list) - set(TOKEN_SCOPES))
        if unknown or not scope_list:
            raise CommandError(
                f"--scopes: expected a comma-separated list of {', '.join(TOKEN_SCOPES)}; "
                f"got {scopes!r}"
            )
        expires_at = None
        if expires_days is not None:
            if expires_days < 1:
                raise CommandError(f"--expires-days: must be at least 1, got {expires_days}")
            expires_at = timezone.now() + timedelta(days=expires_days)
        try:
            token, raw = api_token_create(name=name, scopes=scope_list, expires_at=expires_at)
        except TokenScopeError as exc:  # Kept in step with the service's own rule.
            raise CommandError(f"--scopes: {exc}") from None
        expiry = (
            f"expires {token.expires_at:%Y-%m-%d %H:%M %Z}" if token.expires_at else "no expiry"
        )
        self.stderr.write(
            f"Created API token {token.name!r} (id {token.pk}; scopes: {', '.join(token.scopes)}; "
            f"{expiry}).\nIt is shown only this once: store it now. Send it as the header "
            "'Authorization: Bearer <token>'."
        )
        self.stdout.write(raw)
