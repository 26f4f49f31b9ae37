"""``Job`` moved to the jobs app (``jobs.0001_initial``): a change of Django state only.

The foreign keys of the builds and evaluation runs now name ``jobs.Job``; its table is the same
``recommender_job``, so their constraints stay as they are and no SQL runs.
"""

import django.db.models.deletion
from django.db import migrations, models


def _job_fk():
    return models.ForeignKey(
        blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, to="jobs.job"
    )


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0001_initial"),
        ("recommender", "0014_event_product_do_nothing"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.AlterField(model_name="enginebuild", name="job", field=_job_fk()),
                migrations.AlterField(model_name="indexbuild", name="job", field=_job_fk()),
                migrations.AlterField(model_name="evaluationrun", name="job", field=_job_fk()),
                migrations.DeleteModel(name="Job"),
            ],
        ),
    ]
