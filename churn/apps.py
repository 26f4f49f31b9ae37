"""The churn app: customer churn risk from events, its models, scores and pages."""

from django.apps import AppConfig


class ChurnConfig(AppConfig):
    """Churn risk: features from events, a calibrated model, scheduled scoring, win-back lists.

    Its own app rather than part of ``recommender``: it reads recommender's events and calls its
    recommendation services, but ``recommender`` never depends on it, and its migrations and
    model versions evolve on their own.
    """

    name = "churn"
    verbose_name = "Churn"

    def ready(self) -> None:
        # The churn job shares the jobs app's table, progress and history: register its steps
        # there (the jobs app never imports churn).
        from jobs.registry import Step, job_kind_register

        from . import services
        from .models import ChurnJobKind

        job_kind_register(
            ChurnJobKind.CHURN_SCORE,
            ChurnJobKind.CHURN_SCORE.label,
            (
                Step("train", 0.5, services.job_step_train),
                Step("score", 0.5, services.job_step_score),
            ),
        )
