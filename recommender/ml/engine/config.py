"""The engine's configuration: :class:`EngineConfig`, its defaults and its validation.

Owns every tunable of the engine (source and behaviour weights, half-lives, model sizes,
diversity, exclusions), the bounds that keep one request's cost bounded whatever a configuration
says, and which fields take effect at fit time or per request. Stored as JSON
(``to_json``/``from_json``); nothing here touches arrays.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from recommender.ranking.types import SOURCES

# Offline (no ``ann`` given), catalogues up to this size are searched exactly; larger ones get
# an hnswlib index built once per engine. Category-filtered semantic candidates are searched
# exactly among the category's products up to this many. The engine's modules read it from
# here at call time (``config.EXACT_SEARCH_MAX``), so one change reaches every use.
EXACT_SEARCH_MAX = 20_000
# Upper bounds that keep the cost of one request bounded whatever a configuration says.
MAX_CANDIDATES_PER_SOURCE = 5_000
MAX_INTERESTS = 10
MAX_NEIGHBOURS = 1_000
# Exposure slots are counted per run of this many list positions (docs/evaluation.md): with 1
# slot, positions 10, 20, 30... A list shorter than a run has at most half of it as slots.
EXPOSURE_RUN = 10
MAX_EXPOSURE_SLOTS = 5

# Rotation (``EngineConfig.rotation``): the lists it may apply to (the recommendation log's list
# kinds), each list's settings with their defaults, and their bounds. A served list reads at
# most ``recommender.selectors.recommendations.ROTATION_MAX_LISTS`` of the visitor's recent
# lists, whatever the window, so ``min_impressions`` stays below that.
ROTATION_LISTS: tuple[str, ...] = ("customer", "session", "similar", "bought_together", "trending")
ROTATION_DEFAULTS: dict[str, float] = {"rate": 0.5, "hours": 24.0, "min_impressions": 3}
MAX_ROTATION_HOURS = 720.0  # 30 days
MAX_ROTATION_IMPRESSIONS = 20

# Tuned on the validation split (second-to-last products) of Online Retail and Amazon Office:
# the grid point with the best worst-case NDCG@10 relative to each dataset's own optimum (98.3%
# of both). See docs/evaluation.md. new_arrivals and session are not exercised by that protocol.
DEFAULT_SOURCE_WEIGHTS: dict[str, float] = {
    "semantic": 0.8,
    "collaborative": 1.0,
    "popularity": 0.0,
    "trending": 0.0,
    "new_arrivals": 0.05,
    "session": 1.0,
    # Chosen on the validation split of Ciao (docs/evaluation.md, "Social recommendations";
    # grid 0-2, best validation NDCG@10 over the customers with relationships). A customer
    # without relationships gets nothing from it, whatever its weight.
    "social": 0.8,
    # Products without behaviour reach lists through the exposure slots (``exposure_slots``),
    # not the blend: a weight here would lift every one of them by its exposure score alone.
    "exposure": 0.0,
    # Served only with a sequential build that raised the hybrid's validation NDCG@10
    # (recommender.services.sequential); without one the source proposes nothing.
    "sequential": 1.0,
}
DEFAULT_BEHAVIOUR_WEIGHTS: dict[str, float] = {
    "purchase": 1.0,
    "add_to_cart": 0.6,
    "click": 0.3,
    "view": 0.2,
    "search": 0.3,
}

# Configuration fields the fitted arrays were built with: a change takes effect at the next
# fit. ``behaviour_weights`` is in both sets: a customer's history is weighted with the new
# values at once, while popularity and the collaborative models learn them at the next fit.
FIT_TIME_FIELDS = frozenset(
    {
        "behaviour_weights",
        "popularity_half_life_days",
        "trending_window_days",
        "ease_lambda",
        "knn_neighbours",
        "cooccurrence_event_types",
    }
)
# Fields read per request: :meth:`HybridEngine.with_config` applies them to a fitted engine.
# ``new_arrival_days`` and ``cold_collaborative`` are among them (the arrival window and the
# borrowed share are computed per request; the look-alike lists do not depend on them).
REQUEST_TIME_FIELDS = frozenset(
    {
        "source_weights",
        "behaviour_weights",
        "half_life_days",
        "new_arrival_days",
        "mmr_lambda",
        "cold_collaborative",
        "exposure_slots",
        "exposure_min_score",
        "max_per_category",
        "exclude_event_types",
        "n_interests",
        "candidates_per_source",
        "social_hop_decay",
        "social_half_life_days",
        "social_tie_floor",
        "rotation",
    }
)


class ConfigError(ValueError):
    """A recommendation configuration field is missing, of the wrong type, or out of range."""


@dataclass(frozen=True)
class EngineConfig:
    """Everything that tunes the engine; stored as JSON (``to_dict``/``from_dict``)."""

    source_weights: Mapping[str, float] = field(
        default_factory=lambda: dict(DEFAULT_SOURCE_WEIGHTS)
    )
    behaviour_weights: Mapping[str, float] = field(
        default_factory=lambda: dict(DEFAULT_BEHAVIOUR_WEIGHTS)
    )
    half_life_days: float = 7.0  # Recency of a customer's own events (tuned).
    popularity_half_life_days: float = 30.0
    trending_window_days: float = 7.0
    new_arrival_days: float = 30.0
    ease_lambda: float = 200.0
    knn_neighbours: int = 100
    mmr_lambda: float = 1.0  # 1 keeps the fused order; lower trades relevance for variety.
    # A product without events borrows this share of the collaborative score of its most
    # similar product with events (times their cosine): 0 leaves it to the semantic source.
    # Chosen on validation (docs/evaluation.md): every share > 0 cost warm customers more than
    # the 0.5% tolerance on both datasets, so it is a merchant's opt-in for launch-heavy shops.
    cold_collaborative: float = 0.0
    # Exposure slots: in each run of ``EXPOSURE_RUN`` positions, the last ``exposure_slots`` go
    # to products without behaviour (no event at the fit, or newer than it) whose exposure score
    # is at least ``exposure_min_score``, best first, unless enough of them rank there on their
    # own. The exposure score is the product's similarity to the customer's nearest interest
    # (cosine, -1 to 1) plus what its look-alikes (products with events nearest to it) earn from
    # the collaborative source, as a share of the customer's best (0 to 1): -1 to 2 in all.
    # Chosen on validation (docs/evaluation.md, "Exposure slots"; ``evaluate --tune-exposure``):
    # the one point that reaches 80% of the content model's cold Recall@10 within 5% of warm
    # NDCG@10 on both datasets (Online Retail -1.7%, Amazon Office -4.5% on validation).
    exposure_slots: int = 2
    exposure_min_score: float = 1.2
    max_per_category: int | None = None
    exclude_event_types: tuple[str, ...] = ("purchase",)
    n_interests: int = 1  # Tuned; 3 scored 0.5% lower on validation, so it stays opt-in.
    candidates_per_source: int = 200
    cooccurrence_event_types: tuple[str, ...] = ("purchase", "add_to_cart")
    # The social source: a second-hop member counts this share of a direct one; a member's
    # event counts half after this many days; a member who shares nothing with the customer has
    # this tie strength (shared taste adds the cosine overlap of the histories). Defaults set a
    # priori; ``evaluate --tune-social`` chooses them on a shop's validation split
    # (docs/evaluation.md).
    social_hop_decay: float = 0.5
    social_half_life_days: float = 180.0
    social_tie_floor: float = 0.5
    # Rotation, per list kind (off for every list by default): a product shown to the same
    # visitor at least ``min_impressions`` times within ``hours`` without an interaction since
    # has its score multiplied by (1 - ``rate``) ** (times shown - min_impressions + 1).
    # Read per request by the services (docs/merchandising.md, "Rotation"); the engine itself
    # never reads it.
    rotation: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Each check raises ConfigError naming the field; numbers are stored as floats.
        self._check_weights()
        self._check_positive_numbers()
        self._check_shares()
        self._check_counts()
        self._check_event_type_lists()
        self._check_rotation()

    def _check_weights(self) -> None:
        for name in ("source_weights", "behaviour_weights"):
            mapping = getattr(self, name)
            if not isinstance(mapping, Mapping):
                raise ConfigError(f"{name}: expected an object of numbers, got {mapping!r}")
            for key, value in mapping.items():
                if not isinstance(key, str):
                    raise ConfigError(f"{name}: keys must be strings, got {key!r}")
                if not _is_number(value) or value < 0 or not math.isfinite(value):
                    raise ConfigError(f"{name}.{key}: expected a number >= 0, got {value!r}")
            object.__setattr__(self, name, {k: float(v) for k, v in mapping.items()})
        unknown = set(self.source_weights) - set(SOURCES)
        if unknown:
            raise ConfigError(
                f"source_weights: unknown source(s) {sorted(unknown)}; expected {list(SOURCES)}"
            )

    def _check_positive_numbers(self) -> None:
        for name in (
            "half_life_days",
            "popularity_half_life_days",
            "trending_window_days",
            "new_arrival_days",
            "ease_lambda",
            "social_half_life_days",
        ):
            value = getattr(self, name)
            if not _is_number(value) or not value > 0 or not math.isfinite(value):
                raise ConfigError(f"{name}: expected a number > 0, got {value!r}")
            object.__setattr__(self, name, float(value))

    def _check_shares(self) -> None:
        cold = self.cold_collaborative
        if not _is_number(cold) or cold < 0 or not math.isfinite(cold):
            raise ConfigError(f"cold_collaborative: expected a number >= 0, got {cold!r}")
        object.__setattr__(self, "cold_collaborative", float(cold))
        least = self.exposure_min_score
        if not _is_number(least) or not -1.0 <= least <= 2.0:
            raise ConfigError(f"exposure_min_score: expected a number from -1 to 2, got {least!r}")
        object.__setattr__(self, "exposure_min_score", float(least))
        if not _is_number(self.mmr_lambda) or not 0.0 <= self.mmr_lambda <= 1.0:
            raise ConfigError(f"mmr_lambda: expected a number from 0 to 1, got {self.mmr_lambda!r}")
        object.__setattr__(self, "mmr_lambda", float(self.mmr_lambda))
        hop = self.social_hop_decay
        if not _is_number(hop) or not 0.0 <= hop <= 1.0:
            raise ConfigError(f"social_hop_decay: expected a number from 0 to 1, got {hop!r}")
        object.__setattr__(self, "social_hop_decay", float(hop))
        floor = self.social_tie_floor
        # Above 0: a customer without history (every tie at the floor) still gets their network.
        if not _is_number(floor) or not floor > 0 or not math.isfinite(floor):
            raise ConfigError(f"social_tie_floor: expected a number > 0, got {floor!r}")
        object.__setattr__(self, "social_tie_floor", float(floor))

    def _check_counts(self) -> None:
        for name, largest in (
            ("n_interests", MAX_INTERESTS),
            ("candidates_per_source", MAX_CANDIDATES_PER_SOURCE),
            ("knn_neighbours", MAX_NEIGHBOURS),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= largest:
                raise ConfigError(f"{name}: expected an integer from 1 to {largest}, got {value!r}")
        slots = self.exposure_slots
        if (
            isinstance(slots, bool)
            or not isinstance(slots, int)
            or not 0 <= slots <= MAX_EXPOSURE_SLOTS
        ):
            raise ConfigError(
                f"exposure_slots: expected an integer from 0 to {MAX_EXPOSURE_SLOTS}, got {slots!r}"
            )
        cap = self.max_per_category
        if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
            raise ConfigError(f"max_per_category: expected null or an integer >= 1, got {cap!r}")

    def _check_event_type_lists(self) -> None:
        for name in ("exclude_event_types", "cooccurrence_event_types"):
            value = getattr(self, name)
            if isinstance(value, str) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{name}: expected a list of event type names, got {value!r}")
            object.__setattr__(self, name, tuple(value))

    def _check_rotation(self) -> None:
        rotation = self.rotation
        if not isinstance(rotation, Mapping):
            raise ConfigError(f"rotation: expected an object of lists, got {rotation!r}")
        checked: dict[str, dict[str, float]] = {}
        for kind, values in rotation.items():
            if kind not in ROTATION_LISTS:
                raise ConfigError(
                    f"rotation: unknown list {kind!r}; expected one of {list(ROTATION_LISTS)}"
                )
            if not isinstance(values, Mapping):
                raise ConfigError(f"rotation.{kind}: expected an object, got {values!r}")
            unknown = sorted(set(values) - set(ROTATION_DEFAULTS))
            if unknown:
                raise ConfigError(
                    f"rotation.{kind}.{unknown[0]}: unknown setting; expected "
                    f"{list(ROTATION_DEFAULTS)}"
                )
            merged = {**ROTATION_DEFAULTS, **values}
            rate, hours, least = merged["rate"], merged["hours"], merged["min_impressions"]
            if not _is_number(rate) or not 0.0 < rate <= 1.0:
                raise ConfigError(
                    f"rotation.{kind}.rate: expected a number above 0 and at most 1, got {rate!r}"
                )
            if not _is_number(hours) or not 0.0 < hours <= MAX_ROTATION_HOURS:
                raise ConfigError(
                    f"rotation.{kind}.hours: expected a number above 0 and at most "
                    f"{MAX_ROTATION_HOURS:g}, got {hours!r}"
                )
            if (
                isinstance(least, bool)
                or not isinstance(least, int)
                or not 1 <= least <= MAX_ROTATION_IMPRESSIONS
            ):
                raise ConfigError(
                    f"rotation.{kind}.min_impressions: expected an integer from 1 to "
                    f"{MAX_ROTATION_IMPRESSIONS}, got {least!r}"
                )
            checked[kind] = {"rate": float(rate), "hours": float(hours), "min_impressions": least}
        # Lists in a fixed order, so equal settings compare and serialise equal.
        object.__setattr__(
            self, "rotation", {kind: checked[kind] for kind in ROTATION_LISTS if kind in checked}
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["source_weights"] = dict(self.source_weights)
        data["behaviour_weights"] = dict(self.behaviour_weights)
        data["rotation"] = {kind: dict(values) for kind, values in self.rotation.items()}
        data["exclude_event_types"] = list(self.exclude_event_types)
        data["cooccurrence_event_types"] = list(self.cooccurrence_event_types)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EngineConfig:
        """Build from JSON data; missing fields take defaults, unknown fields are an error."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"configuration: expected an object, got {type(data).__name__}")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"{unknown[0]}: unknown configuration field")
        values = dict(data)
        for name in ("exclude_event_types", "cooccurrence_event_types"):
            if name in values and isinstance(values[name], list):
                values[name] = tuple(values[name])
        return cls(**values)

    @classmethod
    def from_json(cls, text: str) -> EngineConfig:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"configuration: not valid JSON ({exc})") from exc
        return cls.from_dict(data)

    def replace(self, **changes: Any) -> EngineConfig:
        return EngineConfig.from_dict({**self.to_dict(), **changes})


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
