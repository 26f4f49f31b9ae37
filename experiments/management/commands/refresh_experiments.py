"""``manage.py refresh_experiments [--experiment ID]``: attribute events and recompute results."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from experiments import selectors, services


class Command(BaseCommand):
    help = (
        "Attribute clicks, carts and purchases to the lists experiments served and recompute "
        "their per-variant results (every running experiment, or --experiment ID)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--experiment", type=int, help="One experiment's id.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["experiment"] is not None:
            experiment = selectors.experiment_get(pk=options["experiment"])
            if experiment is None:
                raise CommandError(f"experiment: no experiment has id {options['experiment']}")
            targets = [experiment]
        else:
            targets = selectors.experiments_running()
        for experiment in targets:
            counts = services.experiment_results_refresh(experiment=experiment)
            results = selectors.experiment_results(experiment=experiment, daily=False)
            self.stdout.write(
                f"{experiment.name}: {counts['lists']} lists, {counts['visitors']} visitors, "
                f"{counts['explicit']} events by id, {counts['window']} by last touch, "
                f"{counts['unattributed']} unattributed ({counts['unknown_ids']} unknown ids)"
            )
            self.stdout.write(f"  {results.decision}")
        if not targets:
            self.stdout.write("No running experiment.")
