"""The jobs platform app: background jobs and the immutable artifacts they build.

It owns the job table (:class:`jobs.models.Job`), the registry of job kinds and their steps
(:mod:`jobs.registry`), the step runner with its progress, heartbeat and lost-worker sweep
(:mod:`jobs.services.runs`), starting a job once its transaction commits
(:func:`jobs.services.runs.job_start`), the versioned build artifacts every app publishes
(:class:`jobs.models.ArtifactBuild`, :mod:`jobs.services.artifacts`,
:mod:`jobs.services.artifact_store`, :mod:`jobs.selectors`) and the commands' progress bar
(:mod:`jobs.management.bar`). Apps (recommender, tagging, churn) register their own kinds from
their ``AppConfig.ready``; this app imports none of them.
"""
