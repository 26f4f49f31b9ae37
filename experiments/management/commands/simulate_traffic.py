"""``manage.py simulate_traffic --from DATE --days N``: replay the shop's past traffic through an
experiment (docs/experiments.md, "Replay").

    manage.py simulate_traffic --from 2011-10-14 --days 56 --experiment 3
    manage.py simulate_traffic --from 2011-10-14 --days 56 --name "hybrid vs popularity" \\
        --treatment popularity
    manage.py simulate_traffic --from 2011-10-14 --days 56 --name "A/A" --aa-runs 200
    manage.py simulate_traffic --discard 7
"""

from __future__ import annotations

import argparse
from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from experiments import selectors, simulation
from experiments.models import Experiment, ExperimentJobKind, Metric
from experiments.services import ExperimentError
from experiments.tasks import experiment_replay_run
from jobs.management.bar import job_run_with_bar
from jobs.services.runs import job_create

# The command's option for each field a refusal names.
OPTIONS = {
    "from": "--from",
    "days": "--days",
    "k": "--k",
    "gap_minutes": "--gap-minutes",
    "name": "--name",
    "treatment": "--treatment",
    "control": "--control",
    "lists": "--experiment",
    "experiment": "--experiment",
    "variants": "--experiment",
    "variants[0].config_version": "--control",
    "variants[1].config_version": "--treatment",
    "primary_metric": "--primary-metric",
    "horizon_visitors": "--horizon-visitors",
}


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date as YYYY-MM-DD, got {text!r}") from None


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected 1 or more, got {value}")
    return value


class Command(BaseCommand):
    help = (
        "Replay the shop's real behaviour after --from as visits, through an experiment: the "
        "engine is fitted only on the events before --from, each visit asks for the customer's "
        "list from the variant the experiment assigns, and a listed product the customer really "
        "touched during the visit records a click (a cart, a purchase). Writes a new replay "
        "experiment (marked as simulated, never started; its log rows are marked replayed); the "
        "shop's own data is only read. docs/experiments.md, 'Replay'."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--from", dest="since", type=_day, metavar="DATE",
            help="First day replayed (YYYY-MM-DD, the shop's time zone); the engine learns from "
            "the events before it.",
        )  # fmt: skip
        parser.add_argument(
            "--days",
            type=_positive,
            help=f"Days replayed from --from (1 to {simulation.MAX_DAYS}).",
        )
        which = parser.add_mutually_exclusive_group()
        which.add_argument(
            "--experiment", type=int, metavar="ID",
            help="Replay this experiment (its variants, shares and assignment) as a new replay.",
        )  # fmt: skip
        which.add_argument(
            "--name",
            help="Replay a new two-variant experiment of this name: the control against "
            "--treatment, or an A/A (two identical variants) without it.",
        )
        which.add_argument(
            "--discard", type=int, metavar="ID",
            help="Delete replay ID and everything it wrote (its log rows and results).",
        )  # fmt: skip
        parser.add_argument(
            "--treatment", metavar="active|popularity|none|vN",
            help="With --name: the treatment: the active configuration, a baseline (popularity "
            "only, no recommendations) or configuration version N. Without it: an A/A "
            "experiment (two variants serving the control).",
        )  # fmt: skip
        parser.add_argument(
            "--control", default="active", metavar="active|popularity|none|vN",
            help="With --name: the control, as --treatment (default: the active configuration).",
        )  # fmt: skip
        parser.add_argument(
            "--share", type=int, default=50, help="With --name: the treatment's share, percent."
        )
        parser.add_argument(
            "--primary-metric", choices=Metric.values, default=Metric.CTR,
            help="With --name: the primary metric.",
        )  # fmt: skip
        parser.add_argument(
            "--horizon-visitors", type=_positive, default=1000,
            help="With --name: the fixed horizon, visitors per variant.",
        )  # fmt: skip
        parser.add_argument(
            "--k", type=int, default=simulation.DEFAULT_K, help="Products per list (default 10)."
        )
        parser.add_argument(
            "--gap-minutes", type=float, default=simulation.DEFAULT_GAP_SECONDS / 60,
            help="A visit ends after this long without an event (default 30).",
        )  # fmt: skip
        parser.add_argument(
            "--aa-runs", type=_positive, metavar="N",
            help="After the replay of an A/A experiment, re-split its visitors N times with "
            "other salts and report how often the statistics call the identical variants "
            "different, and how often the sample-ratio check fires on a 45/55 split of a 50/50 "
            "experiment.",
        )  # fmt: skip
        parser.add_argument(
            "--if-missing", action="store_true",
            help="With --name: do nothing when a finished replay of that name exists.",
        )  # fmt: skip
        parser.add_argument(
            "--background", action="store_true",
            help="Queue the replay for the workers (cpu queue) and follow it.",
        )  # fmt: skip
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["discard"] is not None:
            self._discard(options["discard"])
            return
        experiment = self._replay_of(options)
        if experiment is None:
            return
        job = job_create(
            kind=ExperimentJobKind.EXPERIMENT_REPLAY,
            params={"experiment": experiment.pk, "source": "manage.py simulate_traffic"},
        )
        job_run_with_bar(
            job,
            name="replay",
            enqueue=experiment_replay_run.si(job_id=job.pk) if options["background"] else None,
            progress=not options["no_progress"],
            stream=self.stderr,
        )
        fresh = selectors.experiment_get(pk=experiment.pk)
        assert fresh is not None
        self._report(fresh)
        if options["aa_runs"]:
            self._aa(fresh, options["aa_runs"])

    # Steps ----------------------------------------------------------------------------------

    def _refused(self, exc: ExperimentError) -> CommandError:
        option = OPTIONS.get(exc.field, exc.field)
        return CommandError(f"{option}: {exc.message}")

    def _discard(self, pk: int) -> None:
        experiment = selectors.experiment_get(pk=pk)
        if experiment is None:
            raise CommandError(f"--discard: no experiment has id {pk}")
        try:
            rows = simulation.experiment_replay_discard(experiment=experiment)
        except ExperimentError as exc:
            raise CommandError(f"--discard: {exc.message}") from None
        self.stdout.write(f"Discarded replay {pk} '{experiment.name}' and its {rows} log rows.")

    def _options_check(self, options: dict[str, Any]) -> None:
        """Refuse options that contradict each other, naming them."""
        for option, key in (("--from", "since"), ("--days", "days")):
            if options[key] is None:
                raise CommandError(f"{option}: required (or --discard ID)")
        if options["experiment"] is None and options["name"] is None:
            raise CommandError("--experiment or --name: say what to replay")
        if options["name"] is None:
            if options["control"] != "active":
                raise CommandError("--control: only with --name")
            for option in ("treatment", "if_missing"):
                if options[option]:
                    raise CommandError(f"--{option.replace('_', '-')}: only with --name")
        if not 1 <= options["share"] <= 99:
            raise CommandError("--share: a whole percent from 1 to 99")
        if options["aa_runs"] and options["treatment"]:
            raise CommandError("--aa-runs: an A/A replay has no --treatment")

    def _replay_of(self, options: dict[str, Any]) -> Experiment | None:
        """The replay to run (created now), or None when --if-missing finds one done."""
        self._options_check(options)
        plan = simulation.ReplayPlan(
            since=options["since"],
            days=options["days"],
            k=options["k"],
            gap_minutes=options["gap_minutes"],
        )
        try:
            if options["experiment"] is not None:
                return self._replay_of_experiment(options, plan)
            existing = Experiment.objects.filter(name=options["name"]).first()
            if existing is not None and options["if_missing"]:
                status = (existing.replay or {}).get("status")
                if status == "done":
                    self.stdout.write(
                        f"Nothing to do: the replay '{existing.name}' exists (experiment "
                        f"{existing.pk})."
                    )
                    return None
                raise CommandError(
                    f"--name: experiment {existing.pk} '{existing.name}' exists and is not a "
                    f"finished replay ({status or 'a live experiment'}); discard it with "
                    f"--discard {existing.pk} or choose another name"
                )
            spec = simulation.experiment_replay_spec(
                name=options["name"],
                treatment=options["treatment"],
                control=options["control"],
                share=options["share"],
                primary_metric=options["primary_metric"],
                horizon_visitors=options["horizon_visitors"],
            )
            return simulation.experiment_replay_create(plan=plan, spec=spec)
        except ExperimentError as exc:
            raise self._refused(exc) from None

    def _replay_of_experiment(
        self, options: dict[str, Any], plan: simulation.ReplayPlan
    ) -> Experiment:
        source = selectors.experiment_get(pk=options["experiment"])
        if source is None:
            raise CommandError(f"--experiment: no experiment has id {options['experiment']}")
        if options["aa_runs"] and not simulation.experiment_is_aa(source):
            raise CommandError(
                "--aa-runs: experiment's variants differ; an A/A calibration needs variants "
                "that all serve the same configuration"
            )
        return simulation.experiment_replay_create(plan=plan, source=source)

    # Output ---------------------------------------------------------------------------------

    def _report(self, experiment: Experiment) -> None:
        replay = experiment.replay or {}
        engine = replay.get("engine", {})
        results = selectors.experiment_results(experiment=experiment, daily=False)
        self.stdout.write(
            f"Replay {experiment.pk} '{experiment.name}': {replay.get('from')} + "
            f"{replay.get('days')} days; engine fitted on {engine.get('events')} events of "
            f"{engine.get('customers')} customers (to {engine.get('newest_event')}) in "
            f"{engine.get('fit_seconds')} s; {replay.get('visits')} visits of "
            f"{replay.get('customers')} customers; recorded {replay.get('clicks')} clicks, "
            f"{replay.get('carts')} carts, {replay.get('purchases')} purchases; "
            f"{replay.get('missed')} touched products no list showed; {replay.get('seconds')} s."
        )
        timings = replay.get("timings", {})
        if timings:
            self.stdout.write(
                "  Time: " + ", ".join(f"{part} {seconds} s" for part, seconds in timings.items())
            )
        shown = (Metric.CTR, Metric.CONVERSION, Metric.REVENUE_PER_MILLE)
        for v in results.variants:
            cells = []
            for metric in shown:
                m = v.metrics[metric]
                e = m.estimate
                text = f"{Metric(metric).label} {_fmt(e.value)} [{_fmt(e.low)}, {_fmt(e.high)}]"
                c = m.comparison
                if c is not None and c.lift is not None and c.low is not None:
                    text += (
                        f" lift {c.lift * 100:+.1f}% [{c.low * 100:.1f}, {(c.high or 0) * 100:.1f}]"
                        f" p={c.p_value:.2g}"
                    )
                cells.append(text)
            self.stdout.write(
                f"  {v.name}: {v.visitors} visitors, {v.impressions} impressions; "
                + "; ".join(cells)
            )
        self.stdout.write(
            f"  SRM: chi-square {results.srm.chi2:.2f}, p = {results.srm.p_value:.3g}"
        )
        self.stdout.write(f"  {results.decision}")

    def _aa(self, experiment: Experiment, runs: int) -> None:
        try:
            found = simulation.experiment_aa_calibration(experiment=experiment, runs=runs)
        except ExperimentError as exc:
            raise CommandError(f"--aa-runs: {exc.message}") from None
        self.stdout.write(
            f"A/A calibration: {found.runs} re-splits of {found.visitors} visitors (salts "
            f"aa-0 … aa-{found.runs - 1}), two-sided z-test at alpha = {found.alpha}:"
        )
        for column, metric in (
            ("clicks", Metric.CTR),
            ("carts", Metric.ADD_TO_CART_RATE),
            ("purchases", Metric.CONVERSION),
            ("revenue", Metric.REVENUE_PER_MILLE),
        ):
            primary = " (primary)" if metric == experiment.primary_metric else ""
            self.stdout.write(
                f"  {Metric(metric).label}{primary}: {found.significant[column]} of {found.runs} "
                f"significant ({found.rate(column) * 100:.1f}%)"
            )
        a, b = found.skew
        self.stdout.write(
            f"  Sample ratio check: {found.srm_false_alarms} of {found.runs} 50/50 splits flagged; "
            f"{found.srm_flagged_when_skewed} of {found.runs} {a}/{b} splits of the 50/50 "
            "experiment flagged"
        )


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if abs(value) >= 10 else f"{value:.4f}"
