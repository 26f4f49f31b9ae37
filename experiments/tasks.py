"""Celery tasks of experiments, on the ``cpu`` queue (the route and the beat entry in settings)."""

from celery import shared_task

from jobs.services.runs import job_start, job_steps_run

from .models import ExperimentJobKind


@shared_task(name="experiments.tasks.experiment_results_run")
def experiment_results_run(*, job_id: int) -> None:
    """Run an attribution job (one experiment, or every running one)."""
    job_steps_run(job_id=job_id)


@shared_task(name="experiments.tasks.experiment_results_scheduled")
def experiment_results_scheduled() -> None:
    """Beat: refresh every running experiment's results, recorded in the job history."""
    job_start(kind=ExperimentJobKind.EXPERIMENT_RESULTS, task=experiment_results_run, params={})


@shared_task(name="experiments.tasks.experiment_replay_run")
def experiment_replay_run(*, job_id: int) -> None:
    """Run a replay job (the simulator: fit on the past, serve the replayed visits, record)."""
    job_steps_run(job_id=job_id)
