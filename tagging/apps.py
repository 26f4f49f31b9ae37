"""The tagging app: a tag vocabulary, products tagged by models or people, customer interests."""

from django.apps import AppConfig


class TaggingConfig(AppConfig):
    name = "tagging"
    verbose_name = "Tagging"

    def ready(self) -> None:
        # The job table, its progress and lost-worker sweep belong to the jobs app; tagging
        # registers its job kind's steps there, so the jobs app never imports tagging.
        from . import jobs

        jobs.register()
