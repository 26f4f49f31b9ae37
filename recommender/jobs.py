"""recommender's job kinds and their steps, registered with the jobs app from
``RecommenderConfig.ready`` (:func:`register`) and run by :mod:`jobs.services.runs`.

Each step calls one service (imported when it runs: the import services pull in file readers
only workers need, the fit pulls in numpy and scipy).
"""

from collections.abc import Mapping
from typing import Any

from jobs.choices import BuildStatus
from jobs.models import Job
from jobs.registry import Progress, Step, job_kind_register
from recommender.choices import JobKind
from recommender.models import EngineBuild, IndexBuild, SequentialBuild


def _import_step(service_name: str) -> Step:
    def run(job: Job, progress: Progress) -> Mapping[str, Any]:
        from recommender.services import imports

        service = getattr(imports, service_name)
        return service(
            path=job.params["path"], strict=job.params.get("strict", False), progress=progress
        ).as_dict()

    return Step("import", 1.0, run)


def _embed(job: Job, progress: Progress) -> Mapping[str, Any]:
    from recommender.services.embeddings import product_embeddings_refresh

    return product_embeddings_refresh(full=True, progress=progress).as_dict()


def _build(job: Job, progress: Progress) -> Mapping[str, Any]:
    from recommender.services.index import vector_index_build

    # A lost attempt of this step may have published its build before it died: adopt it rather
    # than publish a second one.
    build = IndexBuild.objects.filter(job=job, status=BuildStatus.READY).first()
    build = build or vector_index_build(job=job, progress=progress)
    return {
        "index_build": build.pk,
        "items": build.item_count,
        "dimension": build.dimension,
        "self_check_recall": build.self_check_recall,
        "seconds": build.build_seconds,
    }


def _autotune(job: Job, progress: Progress) -> Mapping[str, Any]:
    from recommender.services.autotune import config_autotune

    if job.params.get("autotune") is False:
        return {"autotune": "skipped", "reason": "asked not to tune (--no-autotune)"}
    return config_autotune(progress=progress).as_dict()


def _fit(job: Job, progress: Progress) -> Mapping[str, Any]:
    from recommender.services.recommendations import engine_build

    # As for the index: a build published by a lost attempt of this step is adopted.
    build = EngineBuild.objects.filter(job=job, status=BuildStatus.READY).first()
    build = build or engine_build(job=job, progress=progress)
    return {
        "engine_build": build.pk,
        "items": build.item_count,
        "customers": build.customer_count,
        "events": build.event_count,
        "config_version": build.config_version,
        "seconds": build.fit_seconds,
        "collaborative": build.collaborative,
        "reranker": (build.reranker or {}).get("verdict", "off"),
        "memory_estimate_mb": round(build.memory["estimate"]["total"] / 2**20),
        "peak_memory_mb": round(build.memory["peak_rss"] / 2**20)
        if build.memory["peak_rss"]
        else None,
    }


def _tuning_sample(job: Job, progress: Progress) -> Mapping[str, Any]:
    """Prepare the tuning page's metric sample of the new build now, in the worker, so the
    first merchandiser to move a slider does not wait for it (about 20 s on the demo data)."""
    from recommender.services.recommendations import serving_engine_recheck
    from recommender.services.tuning import tuning_sample

    serving_engine_recheck()  # The build the fit step just published.
    sample = tuning_sample()
    return {"tuning_sample_customers": sample.customers}


def _sequential(job: Job, progress: Progress) -> Mapping[str, Any]:
    """Train the sequential model (gpu queue; the CPU without one), gate it on validation,
    publish it; a build a lost attempt of this step published is adopted. A shop too small, or
    ``RECSITE_SEQUENTIAL=off``, gets a message and no build."""
    from recommender.services.sequential import SequentialOutcome, sequential_build

    build = SequentialBuild.objects.filter(job=job, status=BuildStatus.READY).first()
    outcome = (
        SequentialOutcome(build, build.note)
        if build
        else sequential_build(job=job, progress=progress)
    )
    return outcome.as_dict()


def _evaluate(job: Job, progress: Progress) -> Mapping[str, Any]:
    from recommender.services.evaluation_runs import evaluation_job_run

    return evaluation_job_run(job=job, progress=progress)


STEPS: dict[JobKind, tuple[Step, ...]] = {
    JobKind.IMPORT_PRODUCTS: (_import_step("products_import_file"),),
    JobKind.IMPORT_EVENTS: (_import_step("events_import_file"),),
    JobKind.IMPORT_ONLINE_RETAIL: (_import_step("online_retail_import_file"),),
    JobKind.REINDEX: (Step("embed", 0.8, _embed), Step("build", 0.2, _build)),
    # The sequential step runs on the gpu queue (recommender.tasks.train_signature).
    JobKind.TRAIN: (
        Step("autotune", 0.25, _autotune),
        Step("fit", 0.35, _fit),
        Step("tuning-sample", 0.2, _tuning_sample),
        Step("sequential", 0.2, _sequential),
    ),
    JobKind.EVALUATE: (Step("evaluate", 1.0, _evaluate),),
}


def register() -> None:
    for kind, steps in STEPS.items():
        job_kind_register(kind, kind.label, steps)
