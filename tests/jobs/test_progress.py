"""A job's progress is a courtesy: failing to write it never fails the step."""

import pytest
from django.db import connections
from django.utils import timezone

from jobs.choices import JobState
from jobs.models import Job
from jobs.registry import Step, job_kind_register, registry
from jobs.services.runs import job_create, job_steps_run

KIND = "test_reading_step"


@pytest.fixture
def reading_step():
    """A step that reads a result row by row (a chunked read, as the fit's event columns are
    read) and reports progress while another connection commits (as the heartbeat thread
    does): on SQLite the progress write of a connection whose read began before that commit is
    refused ("database is locked"), whatever the timeout."""

    def run(job, progress):
        rows = Job.objects.order_by("pk").values_list("pk", flat=True).iterator(chunk_size=1)
        seen = [next(rows)]
        other = connections.create_connection("default")
        try:
            with other.cursor() as cursor:
                cursor.execute(
                    f"UPDATE {Job._meta.db_table} SET heartbeat_at = %s WHERE id = %s",
                    [other.ops.adapt_datetimefield_value(timezone.now()), job.pk],
                )
            if not other.get_autocommit():
                other.commit()
        finally:
            other.close()
        progress(0.5)
        seen.extend(rows)
        return {"rows": len(seen)}

    job_kind_register(KIND, "A reading step", (Step("read", 1.0, run),))
    yield
    registry().pop(KIND)


@pytest.mark.django_db(transaction=True)
def test_a_progress_write_refused_by_the_database_does_not_fail_the_step(reading_step):
    others = [Job.objects.create(kind=KIND) for _ in range(3)]
    job = job_create(kind=KIND, params={})

    done = job_steps_run(job_id=job.pk)

    assert done.state == JobState.SUCCEEDED
    assert done.counts == {"rows": len(others) + 1}
    assert done.progress == 100.0
