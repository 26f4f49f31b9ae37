"""The steps of a tagging job (``JobKind.TAG``), run by :mod:`recommender.services.jobs`.

``embed`` brings product vectors up to date (new and edited products); ``tag`` scores them
against the vocabulary and stores suggestions. Job params: ``only_new`` (bool), ``threshold``,
``top_k``.
"""

from collections.abc import Mapping
from typing import Any

from recommender.models import Job
from recommender.services.jobs import Progress, Step


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
