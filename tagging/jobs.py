"""The steps of a tagging job (``TaggingJobKind.TAG``), run by :mod:`jobs.services.runs`.

``embed`` brings product vectors up to date (new and edited products); ``tag`` scores them
against the vocabulary and stores suggestions. Job params: ``only_new`` (bool), ``threshold``,
``top_k``.
"""

from collections.abc import Mapping
from typing import Any

from jobs.models import Job
from jobs.registry import Progress, Step, job_kind_register

from .models import TaggingJobKind


def _embed(job: Job, progress: Progress) -> Mapping[str, Any]:
    from recommender.services.embeddings import product_embeddings_refresh

    return product_embeddings_refresh(progress=progress).as_dict()


def _tag(job: Job, progress: Progress) -> Mapping[str, Any]:
    from .services import DEFAULT_THRESHOLD, DEFAULT_TOP_K, tagging_run

    return tagging_run(
        only_new=bool(job.params.get("only_new", False)),
        threshold=float(job.params.get("threshold", DEFAULT_THRESHOLD)),
        top_k=int(job.params.get("top_k", DEFAULT_TOP_K)),
        progress=progress,
    ).as_dict()


TAG_STEPS = (Step("embed", 0.4, _embed), Step("tag", 0.6, _tag))


def register() -> None:
    job_kind_register(TaggingJobKind.TAG, TaggingJobKind.TAG.label, TAG_STEPS)
