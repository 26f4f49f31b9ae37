"""A sequential model of what a customer buys next, tied to the language-model vectors.

Framework-free. :mod:`.sequences` turns behaviour into each customer's product sequence,
:mod:`.network` is the torch network (training only), :mod:`.training` fits it (seeded, early
stopping on the leave-last-out validation split), :mod:`.model` is the fitted model a web process
maps read-only and runs in numpy. The engine uses it as its ``sequential`` source
(:mod:`recommender.ml.engine.sources`).
"""

from .config import SequentialConfig, SequentialConfigError
from .model import (
    ARTIFACT_FORMAT,
    ARTIFACT_VERSION,
    Query,
    SequentialArtifactError,
    SequentialModel,
)
from .training import MIN_CUSTOMERS, FitReport, NotEnoughData, fit_sequential

__all__ = [
    "ARTIFACT_FORMAT",
    "ARTIFACT_VERSION",
    "MIN_CUSTOMERS",
    "FitReport",
    "NotEnoughData",
    "Query",
    "SequentialArtifactError",
    "SequentialConfig",
    "SequentialConfigError",
    "SequentialModel",
    "fit_sequential",
]
