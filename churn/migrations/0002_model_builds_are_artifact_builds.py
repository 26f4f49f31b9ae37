"""Churn model builds become artifact builds (``jobs.models.ArtifactBuild``): a status, an error,
the job that built them and when they started and finished.

Rows trained before were published models: they become READY, started and finished when they
were trained. Their pickled files cannot be read by this version (the model is saved as a JSON
manifest and npz arrays now), so the next churn job trains anew, as it did for any artifact of
an earlier format; pruning later removes the old files like any retired build's.
"""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


def _trained_builds_ready(apps, schema_editor):
    builds = apps.get_model("churn", "ChurnModelBuild").objects.using(
        schema_editor.connection.alias
    )
    builds.update(status="ready", started_at=models.F("trained_at"), finished_at=models.F("trained_at"))


class Migration(migrations.Migration):

    dependencies = [
        ('churn', '0001_initial'),
        ('jobs', '0001_initial'),
    ]

    operations = [
        migrations.AlterModelOptions(
            name='churnmodelbuild',
            options={'get_latest_by': 'finished_at', 'ordering': ['-trained_at', '-id']},
        ),
        migrations.AddField(
            model_name='churnmodelbuild',
            name='error',
            field=models.TextField(blank=True, default=''),
        ),
        migrations.AddField(
            model_name='churnmodelbuild',
            name='finished_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='churnmodelbuild',
            name='job',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, to='jobs.job'),
        ),
        migrations.AddField(
            model_name='churnmodelbuild',
            name='started_at',
            field=models.DateTimeField(auto_now_add=True, default=django.utils.timezone.now),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name='churnmodelbuild',
            name='status',
            field=models.CharField(choices=[('building', 'Building'), ('ready', 'Ready'), ('failed', 'Failed'), ('retired', 'Retired (file removed)')], db_index=True, default='building', max_length=16),
        ),
        migrations.AlterField(
            model_name='churnmodelbuild',
            name='path',
            field=models.CharField(blank=True, default='', max_length=500),
        ),
        migrations.RunPython(_trained_builds_ready, migrations.RunPython.noop),
    ]
