"""Engine builds of the two-stage engine: what collaborative model served and the fit's memory.

Builds published before this migration are files of the first engine format, which the
two-stage engine does not read. Their files are removed (derived data: nothing is lost) and the
builds retired with a message saying so; the next `manage.py train` (or the nightly refresh,
which sees no READY build) fits a new one.
"""

from pathlib import Path

from django.db import migrations, models

SUPERSEDED = (
    "Engine format 1 (before the two-stage engine): not served any more. "
    "Refit with `manage.py train`; the nightly refresh does it too."
)


def supersede_format_one(apps, schema_editor):
    EngineBuild = apps.get_model("recommender", "EngineBuild")
    for build in EngineBuild.objects.filter(status="ready"):
        if build.path:
            try:
                Path(build.path).unlink(missing_ok=True)
            except OSError:
                pass  # Another host's path, or gone: the build is retired either way.
    EngineBuild.objects.filter(status="ready").update(status="retired", error=SUPERSEDED)


class Migration(migrations.Migration):
    dependencies = [("recommender", "0007_merchandising_rule_surfaces")]

    operations = [
        migrations.AddField(
            model_name="enginebuild",
            name="collaborative",
            field=models.CharField(
                blank=True, default="", help_text="The collaborative model and why.", max_length=300
            ),
        ),
        migrations.AddField(
            model_name="enginebuild",
            name="memory",
            field=models.JSONField(
                blank=True,
                default=dict,
                help_text="Memory of the fit: the estimate by part, the budget and the measured peak.",
            ),
        ),
        migrations.RunPython(supersede_format_one, migrations.RunPython.noop),
    ]
