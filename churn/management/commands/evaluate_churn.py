"""Evaluate churn prediction on the imported events: the model against its two baselines."""

import json
from datetime import date
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from churn.ml.model import NotEnoughHistory
from churn.services import churn_evaluate

LABELS = {
    "model": "Gradient boosting (calibrated)",
    "bgnbd": "BG/NBD expected purchases",
    "rfm_logreg": "RFM logistic regression",
}


class Command(BaseCommand):
    help = (
        "ROC AUC, PR AUC and Brier score of the churn model, BG/NBD and RFM logistic "
        "regression, side by side, for customers with a purchase by --cutoff (history through "
        "the end of that day) and the label 'no purchase in the next --horizon days'."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--cutoff", required=True, type=date.fromisoformat, help="YYYY-MM-DD")
        parser.add_argument("--horizon", type=int, default=90, help="Days (default 90).")
        parser.add_argument("--json", type=Path, help="Also write every figure to this file.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["horizon"] < 1:
            raise CommandError("--horizon must be at least 1 day")
        try:
            result = churn_evaluate(cutoff=options["cutoff"], horizon=options["horizon"])
        except NotEnoughHistory as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"cutoff {result['cutoff']}, horizon {result['horizon_days']:.0f} days: "
            f"{result['customers']:,} customers, churn rate {result['churn_rate']:.3f}; "
            f"trained on {len(result['training_cutoffs'])} snapshots "
            f"({result['training_rows']:,} rows, label window "
            f"{result['train_horizon_days']:.0f} days) in {result['seconds']} s"
        )
        self.stdout.write(f"{'method':34} {'ROC AUC':>8} {'PR AUC':>8} {'Brier':>8}")
        for key, metrics in result["methods"].items():
            self.stdout.write(
                f"{LABELS.get(key, key):34} {metrics['roc_auc']:8.4f} {metrics['pr_auc']:8.4f} "
                f"{metrics['brier']:8.4f}"
            )
        if options["json"]:
            options["json"].write_text(json.dumps(result, indent=2) + "\n")
            self.stdout.write(f"written to {options['json']}")
