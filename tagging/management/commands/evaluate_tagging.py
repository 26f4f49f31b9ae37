"""Offline evaluation of auto-tagging against a ground-truth column of the imported catalogue."""

import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from tagging.evaluation import tagging_evaluate

METHODS = ("zero_shot", "logistic", "knn", "mlp", "finetune", "tfidf_lr", "stacked", "stacked_lr")
# Fine-tuning needs the transformer and minutes of CPU: asked for by name only.
DEFAULT_METHODS = ("zero_shot", "logistic", "knn", "mlp", "tfidf_lr", "stacked", "stacked_lr")
LABELS = {
    "zero_shot": "zero-shot (tag text vs product text)",
    "zero_shot_raw_cosine": "zero-shot, raw cosine (no standardisation)",
    "logistic": "supervised: logistic regression on embeddings",
    "knn": "supervised: kNN on embeddings",
    "mlp": "supervised: MLP on embeddings",
    "finetune": "supervised: encoder fine-tuned",
    "tfidf_lr": "baseline: TF-IDF (word + char n-grams) + LR",
    "ensemble_embeddings": "ensemble: fine-tuned + kNN (embeddings only)",
    "ensemble_hybrid": "ensemble: fine-tuned + kNN + TF-IDF LR",
    "stacked": "stacked: weighted members, weights on validation",
    "stacked_lr": "stacked: meta-learner (log-linear pool), fitted on validation",
}


def _label(name: str) -> str:
    method, _, encoder = name.partition("[")
    label = LABELS.get(method, method)
    return f"{label} [{encoder}" if encoder else label


class Command(BaseCommand):
    help = (
        "Evaluate zero-shot, supervised-on-embeddings and TF-IDF + LR tagging side by side, "
        "with a catalogue column (or attribute) as ground truth."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--labels-column",
            default="category",
            help="'category' or the name of a product attribute holding the true tag.",
        )
        parser.add_argument("--test-size", type=float, default=0.2)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--level",
            type=int,
            default=None,
            help="Keep the first N segments of an a/b label (1: department of department/aisle).",
        )
        parser.add_argument(
            "--methods",
            default=",".join(DEFAULT_METHODS),
            help=f"Comma-separated subset of {', '.join(METHODS)}.",
        )
        parser.add_argument(
            "--c-grid",
            help="Comma-separated C values of the logistic regression on embeddings, chosen on "
            "the validation split (one value: no choice, no validation fits).",
        )
        parser.add_argument("--tfidf-c-grid", help="The same for the TF-IDF + LR baseline.")
        parser.add_argument("--k-grid", help="Comma-separated k values of the kNN.")
        parser.add_argument(
            "--encoders",
            help="Comma-separated encoders to compare (installed model names, all-MiniLM-L6-v2 "
            "or model directories); default: the tagging encoder (RECSITE_TAGGING_MODEL). The "
            "stacked ensemble draws on every encoder's methods.",
        )
        parser.add_argument(
            "--target-precision",
            type=float,
            default=None,
            help="Precision the auto-accept threshold must reach (default "
            "RECSITE_TAGGING_TARGET_PRECISION, 0.95); coverage is reported at it.",
        )
        parser.add_argument("--json", dest="json_path", help="Write the full report here.")
        parser.add_argument(
            "--vectors-cache",
            help="An .npz file keeping the product vectors between runs of the same texts.",
        )
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args: Any, **options: Any) -> None:
        methods = tuple(m.strip() for m in options["methods"].split(",") if m.strip())
        unknown = set(methods) - set(METHODS)
        if unknown:
            raise CommandError(f"--methods: unknown {sorted(unknown)}; choose from {METHODS}")
        if not 0 < options["test_size"] < 1:
            raise CommandError("--test-size: must be between 0 and 1")
        target = options["target_precision"]
        if target is None:
            target = settings.RECSITE_TAGGING_TARGET_PRECISION
        if not 0 < target <= 1:
            raise CommandError("--target-precision: must be within (0, 1]")
        encoders = None
        if options["encoders"]:
            encoders = tuple(e.strip() for e in options["encoders"].split(",") if e.strip())
            if not encoders:
                raise CommandError("--encoders: name at least one encoder")
        bar = tqdm(desc="embedding", unit="text", disable=options["no_progress"])

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        cache = Path(options["vectors_cache"]) if options["vectors_cache"] else None
        grids: dict[str, tuple[float, ...]] = {}
        for option, name, kind in (
            ("c_grid", "c_grid", float),
            ("tfidf_c_grid", "tfidf_c_grid", float),
            ("k_grid", "k_grid", int),
        ):
            if options[option]:
                try:
                    grids[name] = tuple(kind(v) for v in options[option].split(","))
                except ValueError:
                    raise CommandError(f"--{option.replace('_', '-')}: expected numbers") from None
        try:
            report = tagging_evaluate(
                labels_column=options["labels_column"],
                test_size=options["test_size"],
                seed=options["seed"],
                level=options["level"],
                methods=methods,
                encoders=encoders,
                target_precision=target,
                vectors_cache=cache,
                grids=grids,
                progress=progress,
                log=lambda message: self.stderr.write(message),
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        finally:
            bar.close()
        split, per_class = report["split"], report["train_examples_per_class"]
        self.stdout.write(
            f"{report['dataset']['products']} products, {split['classes']} classes; "
            f"train {split['train']} (validation {split['validation_within_train']} of them), "
            f"test {split['test']}; labelled training examples per class: min {per_class['min']}, "
            f"median {per_class['median']:g}, max {per_class['max']}"
        )
        self.stdout.write(f"Encoders: {', '.join(report['dataset']['encoders'])}")
        self.stdout.write(
            f"{'method':<72} {'accuracy':>9} {'macro-F1':>9} {'top-3':>7} "
            f"{f'coverage@{target:g}':>14} {'precision':>9}"
        )
        for name, metrics in report["methods"].items():
            coverage = metrics.get("coverage")
            tail = (
                f" {coverage['coverage']:>14.4f} {coverage['precision']:>9.4f}"
                if coverage
                else f" {'-':>14} {'-':>9}"
            )
            self.stdout.write(
                f"{_label(name):<72} {metrics['accuracy']:>9.4f} "
                f"{metrics['macro_f1']:>9.4f} {metrics['top3_accuracy']:>7.4f}{tail}"
            )
        if options["json_path"]:
            Path(options["json_path"]).write_text(json.dumps(report, indent=2) + "\n")
            self.stdout.write(f"Report written to {options['json_path']}")
