"""The accounts app: roles, API tokens, their authentication, permissions and page access."""

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and API tokens"
