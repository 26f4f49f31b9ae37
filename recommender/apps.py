"""The recommender app: catalogue, events, embeddings, the engine, merchandising and serving."""

from django.apps import AppConfig


class RecommenderConfig(AppConfig):
    name = "recommender"
    verbose_name = "Recommender"

    def ready(self) -> None:
        from recommender import (
            checks,  # noqa: F401  (registers the system checks)
            jobs,
        )

        jobs.register()  # Its job kinds and their steps, with the jobs app.
