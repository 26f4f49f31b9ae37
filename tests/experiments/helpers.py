"""Experiments for the tests: specs, a fixed salt (so assignments are known), and starting."""

from datetime import timedelta
from typing import Any

from django.utils import timezone

from experiments import services
from experiments.analysis.assignment import assign
from experiments.models import Experiment

SALT = "test-salt"


def spec(**overrides):
    values: dict[str, Any] = {
        "name": "ranking test",
        "lists": ["customer"],
        "variants": [
            services.VariantSpec("control", 50),
            services.VariantSpec("treatment", 50, baseline="none"),
        ],
        "starts_at": timezone.now() - timedelta(minutes=1),
        "primary_metric": "ctr",
        "horizon_visitors": 2,
    }
    values.update(overrides)
    return services.ExperimentSpec(**values)


def running(**overrides) -> Experiment:
    experiment = services.experiment_create(spec=spec(**overrides))
    Experiment.objects.filter(pk=experiment.pk).update(salt=SALT)
    experiment.refresh_from_db()
    return services.experiment_start(experiment=experiment)


def variant_of(visitor: str, shares=(50, 50), names=("control", "treatment")) -> str:
    return names[assign(SALT, visitor, list(shares))]
