"""Roles and scopes: who may do what.

People log in with Django accounts and belong to a role group; shop back ends use API tokens that
carry scopes. Both resolve to one set of scopes, so every endpoint states one requirement.

| principal                   | read | ingest | privacy | admin |
|-----------------------------|------|--------|---------|-------|
| merchandiser (group)        | yes  |        |         |       |
| admin (group) or superuser  | yes  | yes    | yes     | yes   |
| API token                   | its scopes (read, ingest and/or privacy); never admin |
"""

from django.db import models


class Role(models.TextChoices):
    MERCHANDISER = "merchandiser", "Merchandiser"
    ADMIN = "admin", "Admin"


class Scope(models.TextChoices):
    READ = "read", "Read catalogue, events and recommendations"
    INGEST = "ingest", "Write products, customers and events"
    PRIVACY = "privacy", "Export what is held about a customer (privacy requests)"
    ADMIN = "admin", "Run jobs and manage tokens (people only)"


TOKEN_SCOPES = (Scope.READ, Scope.INGEST, Scope.PRIVACY)

ROLE_SCOPES: dict[str, frozenset[str]] = {
    Role.MERCHANDISER: frozenset({Scope.READ}),
    Role.ADMIN: frozenset({Scope.READ, Scope.INGEST, Scope.PRIVACY, Scope.ADMIN}),
}
