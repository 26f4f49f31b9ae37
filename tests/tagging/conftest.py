"""Fixtures of the tagging tests."""

from tests.tagging.catalogue import catalogue

__all__ = ["catalogue"]
