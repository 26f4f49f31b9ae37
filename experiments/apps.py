"""The experiments app: A/B tests of recommendation configurations with attribution."""

from django.apps import AppConfig


class ExperimentsConfig(AppConfig):
    """Online experiments: variants, sticky assignment, attribution, per-variant statistics.

    Its own app: it reads recommender's log and events and tells recommender's serving path
    which variant serves a visitor through the hook ``recommender`` offers
    (``recommender.services.recommendations.variants``); ``recommender`` never imports it.
    """

    name = "experiments"
    verbose_name = "Experiments"

    def ready(self) -> None:
        from jobs.registry import Step, job_kind_register
        from privacy.registry import ForgetHandler, forget_handler_register
        from recommender.services.recommendations.variants import variant_assigner_register
        from recommender.signals import customer_forgotten

        from . import privacy, services, simulation
        from .models import ExperimentJobKind

        # Forgetting a customer deletes their per-visitor totals; the export lists them.
        customer_forgotten.connect(
            privacy.visitor_stats_forget, dispatch_uid="experiments.visitor_stats_forget"
        )
        forget_handler_register(
            ForgetHandler(name="experiments", export=privacy.visitor_stats_export)
        )

        # Serving asks this app which variant serves a visitor (recommender never imports it).
        variant_assigner_register(services.experiment_variant_for)
        job_kind_register(
            ExperimentJobKind.EXPERIMENT_RESULTS,
            ExperimentJobKind.EXPERIMENT_RESULTS.label,
            (Step("attribute", 1.0, services.job_step_results),),
        )
        job_kind_register(
            ExperimentJobKind.EXPERIMENT_REPLAY,
            ExperimentJobKind.EXPERIMENT_REPLAY.label,
            (Step("replay", 1.0, simulation.job_step_replay),),
        )
