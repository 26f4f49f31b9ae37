"""Online experiments: their variants, and the per-visitor and per-day aggregates their
attribution runs write (docs/experiments.md)."""

import secrets

from django.conf import settings
from django.db import models


class ExperimentJobKind(models.TextChoices):
    """experiments' job kind, registered with the jobs app by ``ExperimentsConfig.ready``."""

    EXPERIMENT_RESULTS = "experiment_results", "Attribute events to experiments"
    EXPERIMENT_REPLAY = "experiment_replay", "Replay past traffic through an experiment"


class ExperimentState(models.TextChoices):
    DRAFT = "draft", "Draft"
    RUNNING = "running", "Running"
    STOPPED = "stopped", "Stopped"


class Metric(models.TextChoices):
    """The ratio metrics of a variant, each per impression (one served list)."""

    CTR = "ctr", "Click-through rate"
    ADD_TO_CART_RATE = "add_to_cart_rate", "Add-to-cart rate"
    CONVERSION = "conversion", "Conversion"
    REVENUE_PER_MILLE = "revenue_per_mille", "Revenue per 1,000 impressions"
    COVERAGE = "coverage", "Coverage (lists with at least one product)"


class Baseline(models.TextChoices):
    NONE = "", "The engine"
    POPULARITY = "popularity", "Popularity only"
    EMPTY = "none", "No recommendations"


class ExperimentList(models.TextChoices):
    """The lists an experiment can cover (the recommendation log's list kinds). Only requests
    that name their visitor take part, so that assignment is sticky: every customer list, a
    session list with its ``session_id``, and a similar, bought-together or trending list with
    a ``customer_id`` or ``session_id``; the others get the control and are not counted."""

    CUSTOMER = "customer", "For a customer"
    SESSION = "session", "For a session"
    SIMILAR = "similar", "Similar products"
    BOUGHT_TOGETHER = "bought_together", "Bought together"
    TRENDING = "trending", "Trending"


def _salt() -> str:
    return secrets.token_hex(8)


class Experiment(models.Model):
    """An A/B test of recommendation configurations on some lists.

    Draft -> running -> stopped. Its variants are fixed once it runs (stop and copy to change
    them). Visitors are assigned by a salted hash (``salt``, unique per experiment, so the
    assignments of two experiments are independent). ``horizon_visitors`` is the fixed horizon
    stated up front: the decision is read only once every variant has that many visitors.
    """

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True, default="")
    lists = models.JSONField(help_text="The list kinds covered (ExperimentList values).")
    state = models.CharField(
        max_length=8, choices=ExperimentState.choices, default=ExperimentState.DRAFT
    )
    salt = models.CharField(max_length=32, default=_salt, editable=False)
    starts_at = models.DateTimeField(help_text="Visitors are assigned from here (once running).")
    ends_at = models.DateTimeField(null=True, blank=True, help_text="And until here, if set.")
    primary_metric = models.CharField(max_length=32, choices=Metric.choices, default=Metric.CTR)
    guardrails = models.JSONField(
        default=list,
        blank=True,
        help_text='[{"metric": ..., "max_drop_pct": ...}]: a treatment must not lower these.',
    )
    horizon_visitors = models.PositiveIntegerField(
        default=1000, help_text="Fixed horizon: visitors per variant before the decision is read."
    )
    copied_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="copies"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    # The last attribution run: when, and what it counted (explicit ids, last-touch, unknown
    # ids, events that matched no list).
    results_at = models.DateTimeField(null=True, blank=True)
    attribution = models.JSONField(default=dict, blank=True)
    # A replay (the simulator, docs/experiments.md "Replay"): its period, its state (queued,
    # running, done, failed) and what it served and recorded. None for a live experiment. A
    # replay is never started: its traffic is simulated, its log rows are marked ``replayed``.
    replay = models.JSONField(
        null=True, blank=True, help_text="Set on a replay of past traffic (simulated)."
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(state__in=ExperimentState.values), name="experiment_state_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(ends_at__isnull=True)
                | models.Q(ends_at__gt=models.F("starts_at")),
                name="experiment_ends_after_start",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.state})"


class Variant(models.Model):
    """One arm: a configuration version and/or rules, or a baseline, with its traffic share."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="variants")
    name = models.CharField(max_length=64)
    position = models.PositiveSmallIntegerField(help_text="Order; the first is the control.")
    share = models.PositiveSmallIntegerField(help_text="Percent of visitors; all sum to 100.")
    config_version = models.PositiveIntegerField(
        null=True, blank=True, help_text="RecommendationConfig.version (none: the active one)."
    )
    baseline = models.CharField(
        max_length=16, choices=Baseline.choices, default=Baseline.NONE, blank=True
    )
    rules = models.BooleanField(default=True, help_text="Apply the merchandising rules.")

    class Meta:
        ordering = ["experiment", "position"]
        constraints = [
            models.UniqueConstraint(fields=["experiment", "name"], name="variant_name_unique"),
            models.UniqueConstraint(
                fields=["experiment", "position"], name="variant_position_unique"
            ),
            models.CheckConstraint(
                condition=models.Q(share__gte=1) & models.Q(share__lte=100),
                name="variant_share_percent",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.experiment.name}: {self.name} ({self.share}%)"

    @property
    def is_control(self) -> bool:
        return self.position == 0


class VisitorStats(models.Model):
    """One visitor's totals in one experiment, from the last attribution run: the unit of the
    per-visitor clustered intervals (a visitor's impressions are not independent)."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="+")
    variant = models.CharField(max_length=64)
    visitor = models.CharField(max_length=140)
    impressions = models.PositiveIntegerField()
    filled = models.PositiveIntegerField(help_text="Impressions with at least one product.")
    clicks = models.PositiveIntegerField()
    carts = models.PositiveIntegerField()
    purchases = models.PositiveIntegerField()
    revenue = models.DecimalField(max_digits=16, decimal_places=2)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["experiment", "visitor"], name="visitor_stats_one_per_visitor"
            ),
        ]
        indexes = [models.Index(fields=["experiment", "variant"], name="visitor_stats_variant")]

    def __str__(self) -> str:
        return f"{self.visitor} in {self.variant}: {self.impressions} impressions"


class DailyStats(models.Model):
    """One variant's totals on one day (the day of the impression), for the charts.

    ``sums`` holds, per metric, the per-visitor sums of that day (``[n, x, xx, y, yy, xy]``,
    see ``experiments.analysis.stats.Sums``), so each day's point has its clustered interval.
    """

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="+")
    variant = models.CharField(max_length=64)
    day = models.DateField()
    visitors = models.PositiveIntegerField()
    impressions = models.PositiveIntegerField()
    sums = models.JSONField(default=dict)

    class Meta:
        ordering = ["experiment", "day", "variant"]
        constraints = [
            models.UniqueConstraint(
                fields=["experiment", "variant", "day"], name="daily_stats_one_per_day"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.variant} on {self.day}: {self.impressions} impressions"
