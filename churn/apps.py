from django.apps import AppConfig


class ChurnConfig(AppConfig):
    """Churn risk: features from events, a calibrated model, scheduled scoring, win-back lists.

    Its own app rather than part of ``recommender``: it reads recommender's events and calls its
    recommendation services, but ``recommender`` never depends on it, and its migrations and
    model versions evolve on their own.
    """

    name = "churn"
    verbose_name = "Churn"
