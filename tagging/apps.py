"""The tagging app: a tag vocabulary, products tagged by models or people, customer interests."""

from django.apps import AppConfig


class TaggingConfig(AppConfig):
    name = "tagging"
    verbose_name = "Tagging"

    def ready(self) -> None:
        # The job table, its progress and stale-job sweep belong to recommender; tagging adds
        # its job kind's steps here, so recommender never imports tagging.
        from recommender.choices import JobKind
        from recommender.services.jobs import job_kind_register

        from .jobs import TAG_STEPS

        job_kind_register(JobKind.TAG, TAG_STEPS)
