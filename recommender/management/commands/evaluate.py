"""``manage.py evaluate``: offline evaluation of the recommenders on the imported data.

Evaluates the active configuration version (or ``--config``) and stores each protocol's report as
an ``EvaluationRun`` of that version, which the dashboard's evaluation page charts.
"""

import json
import platform
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from recommender.evaluation.protocols import Report
from recommender.ml.engine import ConfigError, EngineConfig
from recommender.selectors.tuning import evaluation_run_exists
from recommender.services.evaluation import (
    cold_collaborative_tune,
    engine_data_load,
    evaluation_run,
    exposure_tune,
)
from recommender.services.evaluation_runs import (
    config_version_of,
    evaluate_sample,
    evaluation_run_record,
)
from recommender.services.recommendations import (
    recommendation_config_active,
    recommendation_config_untuned,
)

COLUMNS = ("recall", "ndcg")


def _ks(value: str) -> list[int]:
    try:
        ks = sorted({int(part) for part in value.split(",") if part.strip()})
    except ValueError:
        raise CommandError(f"--k: expected comma-separated integers, got {value!r}") from None
    if not ks or ks[0] < 1 or ks[-1] > 100:
        raise CommandError(f"--k: expected integers from 1 to 100, got {value!r}")
    return ks


def report_table(report: Report) -> str:
    """A Markdown table: one row per model."""
    header = ["model"]
    for k in report.ks:
        header += [f"Recall@{k}", f"NDCG@{k}"]
    header += ["MRR"]
    for k in report.ks:
        header += [f"Coverage@{k}", f"ILD@{k}"]
    header += ["users", "candidate recall"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for result in report.results:
        m = result.metrics
        row = [result.name]
        for k in report.ks:
            row += [f"{m[f'recall@{k}']:.4f}", f"{m[f'ndcg@{k}']:.4f}"]
        row += [f"{m['mrr']:.4f}"]
        for k in report.ks:
            row += [f"{m[f'coverage@{k}']:.4f}", f"{m[f'ild@{k}']:.4f}"]
        row += [str(result.users)]
        # Stage 1's recall: the share of held-out products that reach the engine's candidates.
        recall = m.get("candidate_recall")
        row += [f"{recall:.4f}" if recall is not None else "-"]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def segments_table(report: Report) -> str:
    """A Markdown table of the segments: one row per segment and model, NDCG and recall."""
    header = ["segment", "customers", "model"]
    for k in report.ks:
        header += [f"Recall@{k}", f"NDCG@{k}"]
    header += ["MRR"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for segment, part in report.segments.items():
        for model, m in part["models"].items():
            row = [segment, str(part["users"]), model]
            for k in report.ks:
                row += [f"{m[f'recall@{k}']:.4f}", f"{m[f'ndcg@{k}']:.4f}"]
            row += [f"{m['mrr']:.4f}"]
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def sequential_lines(report: Report) -> list[str]:
    """The sequential model's fit (time, epochs) and the validation gate, when it ran."""
    fit = report.notes.get("sequential")
    if not fit:
        return []
    if "skipped" in fit:
        return [f"sequential: {fit['skipped']}"]
    lines = [
        f"sequential: {report.notes.get('sequential_seconds')} s in all "
        f"({fit['seconds']} s training on {fit['device']}, best epoch {fit['best_epoch']} of "
        f"{len(fit['epochs'])}, {fit['sequences_per_second']} sequences/s), validation "
        f"NDCG@10 {fit['validation_ndcg@10']:.4f}"
    ]
    gate = report.notes.get("sequential_gate")
    if gate:
        served = gate["hybrid_with_ndcg@10"] > gate["hybrid_without_ndcg@10"]
        lines.append(
            f"sequential gate (validation NDCG@10 of the hybrid): "
            f"{gate['hybrid_without_ndcg@10']:.4f} without, {gate['hybrid_with_ndcg@10']:.4f} "
            f"with: a fit {'serves' if served else 'does not serve'} it"
        )
    return lines


class Command(BaseCommand):
    help = (
        "Evaluate popularity, item-kNN, EASE, content-only and the hybrid engine side by side "
        "on the imported data (leave-last-out; optionally the cold-start protocol)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--protocol", default="leave-last-out", choices=["leave-last-out"])
        parser.add_argument("--k", default="10,20", help="Cut-offs, e.g. 10,20.")
        parser.add_argument("--json", dest="json_path", help="Write the full report here.")
        parser.add_argument("--cold-start", action="store_true", help="Also run cold start.")
        parser.add_argument("--seed", type=int, default=0, help="Seed of the cold-start draw.")
        parser.add_argument(
            "--tune",
            action="store_true",
            help="Also tune the blend on the validation split and report it as hybrid_tuned.",
        )
        parser.add_argument(
            "--no-autotune",
            action="store_true",
            help="Report the configuration as it is as hybrid, without train's automatic "
            "tuning on the training split (by default hybrid is what train would serve and "
            "hybrid_defaults the configuration as given).",
        )
        parser.add_argument(
            "--config",
            help="A JSON file with an engine configuration (default: the active version). Its "
            "runs are stored only when it equals a saved version.",
        )
        parser.add_argument(
            "--no-embed", action="store_true", help="Do not embed products missing a vector."
        )
        parser.add_argument(
            "--sample",
            type=int,
            help="Score only this many held-out customers (seeded by --seed), as the dashboard's "
            "evaluation job does; leave-last-out only.",
        )
        parser.add_argument(
            "--if-missing",
            action="store_true",
            help="Do nothing when the configuration version already has a stored run.",
        )
        parser.add_argument(
            "--tune-social",
            action="store_true",
            help="With relationships: choose the social weight, half-life, second-hop share and "
            "tie-strength floor on the validation split (after the automatic tuning) and "
            "evaluate the hybrid with them (docs/evaluation.md).",
        )
        parser.add_argument(
            "--no-sequential",
            action="store_true",
            help="Do not train the sequential model (reported as sequential and "
            "hybrid_sequential; minutes on Online Retail on 2 CPU cores).",
        )
        parser.add_argument(
            "--tune-cold",
            action="store_true",
            help="Also choose cold_collaborative on validation splits (docs/evaluation.md).",
        )
        parser.add_argument(
            "--tune-exposure",
            action="store_true",
            help="Also choose the exposure slots (exposure_slots, exposure_min_score) on "
            'validation splits (docs/evaluation.md, "Exposure slots").',
        )

    def _print_reports(self, reports: list[Report]) -> None:
        for report in reports:
            self.stdout.write(
                f"\n{report.protocol}: {report.users} customers, {report.items} products, "
                f"{report.events} events\n"
            )
            self.stdout.write(report_table(report) + "\n")
            if report.segments:
                self.stdout.write(segments_table(report) + "\n")
            if "social_weight" in report.notes:
                self.stdout.write(
                    f"social weight chosen on validation: {report.notes['social_weight']}\n"
                )
            for line in sequential_lines(report):
                self.stdout.write(line)

    def _table(self, rows: list[dict[str, Any]]) -> None:
        header = list(rows[0])
        self.stdout.write("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
        for row in rows:
            self.stdout.write("| " + " | ".join(str(row[key]) for key in header) + " |")

    def _tune_cold(self, config: EngineConfig, *, seed: int) -> dict[str, Any]:
        share, rows = cold_collaborative_tune(
            config=config, seed=seed, embed_missing=False, log=self.stderr.write
        )
        self.stdout.write("\ncold_collaborative on validation:")
        self._table(rows)
        self.stdout.write(f"chosen cold_collaborative: {share}")
        return {"chosen": share, "rows": rows}

    def _tune_exposure(self, config: EngineConfig, *, seed: int) -> dict[str, Any]:
        (slots, similarity), rows, reference = exposure_tune(
            config=config, seed=seed, embed_missing=False, log=self.stderr.write
        )
        self.stdout.write("\nexposure slots on validation:")
        self._table(rows)
        self.stdout.write(
            "reference: " + ", ".join(f"{key} {value}" for key, value in reference.items())
        )
        self.stdout.write(f"chosen exposure_slots: {slots}, exposure_min_score: {similarity}")
        chosen = {"exposure_slots": slots, "exposure_min_score": similarity}
        return {"chosen": chosen, "rows": rows, "reference": reference}

    def handle(self, *args: Any, **options: Any) -> None:
        ks = _ks(options["k"])
        if options["config"]:
            try:
                config = EngineConfig.from_json(Path(options["config"]).read_text())
            except (OSError, ConfigError) as exc:
                raise CommandError(f"--config: {exc}") from exc
            version = config_version_of(config)
            locked: list[str] = []
        else:
            active = recommendation_config_active()
            version, locked = active.version, list(active.locked)
            # Tuned versions have seen the test items: tuning is evaluated from where it began.
            start = recommendation_config_untuned(active) if not options["no_autotune"] else active
            config = EngineConfig.from_dict(start.config)
            if options["no_autotune"] and active.tuning:
                self.stderr.write(
                    f"Warning: version {version} was tuned automatically on every customer's "
                    "last product, this protocol's test items: its figures are optimistic. "
                    "Without --no-autotune the tuning itself is evaluated."
                )
            if start.version != version:
                self.stderr.write(
                    f"Version {version} was tuned automatically; the tuning is evaluated from "
                    f"version {start.version}, where it began."
                )
        if options["if_missing"] and version is not None and evaluation_run_exists(version=version):
            self.stdout.write(f"Configuration v{version} already has an evaluation run.")
            return
        sample = options["sample"]
        if sample is not None and (sample < 1 or options["cold_start"] or options["tune"]):
            raise CommandError("--sample: expected an integer >= 1, without --cold-start or --tune")
        started = datetime.now(UTC)
        clock = time.perf_counter()
        if sample is not None:
            reports = [
                evaluate_sample(
                    engine_data_load(embed_missing=not options["no_embed"]),
                    config=config,
                    sample=sample,
                    seed=options["seed"],
                    ks=ks,
                )
            ]
        else:
            reports = evaluation_run(
                protocol=options["protocol"],
                ks=ks,
                cold_start=options["cold_start"],
                seed=options["seed"],
                tune=options["tune"],
                config=config,
                embed_missing=not options["no_embed"],
                log=lambda line: self.stderr.write(line),
                tune_social=options["tune_social"],
                autotune=not options["no_autotune"],
                locked=locked,
                sequential=not options["no_sequential"],
            )
        self._print_reports(reports)
        seconds = time.perf_counter() - clock
        if version is None:
            self.stderr.write("Not stored: --config equals no saved configuration version.")
        else:
            for report in reports:
                run = evaluation_run_record(report=report, config_version=version, seconds=seconds)
                self.stderr.write(f"Stored evaluation run {run.pk} (config v{version}).")
        tuning: dict[str, Any] = {}
        if options["tune_cold"]:
            tuning["cold_collaborative"] = self._tune_cold(config, seed=options["seed"])
        if options["tune_exposure"]:
            tuning["exposure"] = self._tune_exposure(config, seed=options["seed"])
        if options["json_path"]:
            payload = {
                "started_at": started.isoformat(),
                "machine": f"{platform.node()} {platform.machine()} {platform.processor()}",
                "reports": [report.to_dict() for report in reports],
                **({"validation_sweeps": tuning} if tuning else {}),
            }
            path = Path(options["json_path"])
            path.write_text(json.dumps(payload, indent=2) + "\n")
            self.stdout.write(f"Wrote {path}")
