"""Merchandising rules name the lists they apply to.

Before this migration rules applied to customer and session lists only; rules that already
exist keep doing exactly that, and new rules apply to every list unless told otherwise.
"""

from django.db import migrations, models

import recommender.models.merchandising


def existing_rules_keep_their_lists(apps, schema_editor):
    rule = apps.get_model("recommender", "MerchandisingRule")
    rule.objects.update(surfaces=["customer", "session"])


class Migration(migrations.Migration):
    dependencies = [
        ("recommender", "0006_merchandising_rules"),
    ]

    operations = [
        migrations.AddField(
            model_name="merchandisingrule",
            name="surfaces",
            field=models.JSONField(
                default=recommender.models.merchandising.rule_surfaces_all,
                help_text="The lists the rule applies to: customer, session, similar, "
                "bought_together, trending.",
            ),
        ),
        migrations.RunPython(existing_rules_keep_their_lists, migrations.RunPython.noop),
    ]
