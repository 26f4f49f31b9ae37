"""The job table moves here from ``recommender`` (Django state only).

The table keeps its name, ``recommender_job``: recommender's migrations up to 0014 created it and
still do on a new database, so nothing is copied and existing rows stay where they are.
``recommender.0015_job_moves_to_jobs_app`` then points its foreign keys here and drops the model
from its own state. The content type follows the model, so permissions and admin history of
jobs stay attached.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def _content_type_move(apps, schema_editor):
    _relabel(apps, schema_editor, old="recommender", new="jobs")


def _content_type_move_back(apps, schema_editor):
    _relabel(apps, schema_editor, old="jobs", new="recommender")


def _relabel(apps, schema_editor, *, old, new):
    content_types = apps.get_model("contenttypes", "ContentType").objects.using(
        schema_editor.connection.alias
    )
    if not content_types.filter(app_label=new, model="job").exists():
        content_types.filter(app_label=old, model="job").update(app_label=new)


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("contenttypes", "0002_remove_content_type_name"),
        # The table exists (created by recommender's migrations) before any model refers to it.
        ("recommender", "0014_event_product_do_nothing"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
        migrations.CreateModel(
            name='Job',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('kind', models.CharField(max_length=32)),
                ('state', models.CharField(choices=[('queued', 'Queued'), ('running', 'Running'), ('succeeded', 'Succeeded'), ('failed', 'Failed')], db_index=True, default='queued', max_length=16)),
                ('params', models.JSONField(blank=True, default=dict)),
                ('progress', models.FloatField(default=0.0, help_text='0 to 100.')),
                ('counts', models.JSONField(blank=True, default=dict)),
                ('error', models.TextField(blank=True, default='')),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('started_at', models.DateTimeField(blank=True, null=True)),
                ('heartbeat_at', models.DateTimeField(blank=True, help_text='Last sign of life from the worker running it.', null=True)),
                ('step', models.CharField(blank=True, default='', help_text='The step running or last started.', max_length=32)),
                ('attempts', models.PositiveSmallIntegerField(default=0, help_text='How many times the current step was started (more than once: its worker died and the task was delivered again).')),
                ('worker', models.CharField(blank=True, default='', help_text="The process running the current step: host, pid, and what tells that pid's process from a later one (jobs.liveness).", max_length=255)),
                ('finished_at', models.DateTimeField(blank=True, null=True)),
                ('triggered_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'db_table': 'recommender_job',
                'ordering': ['-created_at', '-id'],
                'constraints': [models.CheckConstraint(condition=models.Q(('progress__gte', 0), ('progress__lte', 100)), name='job_progress_percent')],
            },
        ),
            ],
        ),
        migrations.RunPython(_content_type_move, _content_type_move_back),
    ]
