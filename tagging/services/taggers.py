"""The taggers an auto-tagging run scores with, built from the shop's own reviewed tags.

Owns :func:`taggers_build`: zero-shot (calibrated on confirmed tags when any), then, once
merchants confirmed enough tags, the supervised tagger of ``RECSITE_TAGGING_SUPERVISED``:

- ``stacked`` (default): the stacked ensemble of zero-shot, a logistic regression and a kNN on
  the tagging encoder's vectors and TF-IDF + LR on the products' own texts, with weights chosen
  on a held-out fifth of the reviews (a member may get weight 0: the shop's reviews decide which
  methods ship, per shop); from ``META_MIN_HELD`` held-out reviews on, a meta-learner (a
  learned log-linear pool) on the members' probabilities replaces the weighted average where
  it is more accurate on them (out-of-fold);
- ``logistic`` / ``finetune``: one supervised tagger that takes over the tags where it beats
  zero-shot on the held-out reviews.

And the auto-accept thresholds: on the same held-out reviews, per tag (and globally for tags
with few reviews) the lowest confidence at which the suggestions reach
``RECSITE_TAGGING_TARGET_PRECISION``. Rows that auto-accept decided are never learned from (they
would confirm the model's own guesses and inflate the measured precision).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from django.conf import settings

from recommender.ml.embedding import model_dir
from recommender.ml.text import product_embedding_text
from recommender.models import Product
from recommender.services.embeddings import encoder_model_path, get_embedder

from .. import ml
from ..models import ProductTag, ProductTagStatus, Tag

logger = logging.getLogger(__name__)

Scorer = Callable[[np.ndarray], np.ndarray]
SUPERVISED_KINDS = ("stacked", "logistic", "finetune")
# Supervised tagging starts once merchants confirmed this many tags, on at least two tags.
MIN_CONFIRMED = 20
# Catalogue sample for each tag's cosine statistics (zero-shot standardisation).
STATS_SAMPLE = 20_000
# The stacked tagger tries the meta-learner combiner from this many held-out reviews on.
META_MIN_HELD = 200


@dataclass(slots=True)
class TaggingCounts:
    products: int = 0  # Products scored.
    tags: int = 0  # Leaf tags scored.
    suggested: int = 0  # Suggestions written (created or refreshed: pending or auto-accepted).
    auto_accepted: int = 0  # Of those, accepted by auto-accept.
    kept_decisions: int = 0  # Suggestions skipped because a merchant already decided the pair.
    dropped: int = 0  # Pending suggestions no longer suggested, removed.
    confirmed: int = 0  # Accepted/rejected leaf tags learned from.
    supervised_tags: int = 0  # Tags where a supervised tagger contributes.
    temperature: float = ml.DEFAULT_TEMPERATURE
    model_version: str = ""
    encoder: str = ""
    # The stacked ensemble's members and weights (empty: zero-shot alone or one tagger).
    weights: dict[str, float] = field(default_factory=dict)
    # How the stack combines its members: "weighted" (the weights above) or "meta_lr" (a
    # learned log-linear pool of every member's probabilities, when it won on held-out reviews).
    stacker: str = ""
    # Auto-accept: target precision, the global threshold (None: never), and per tag name its
    # threshold (None: never), whether measured on the tag's own reviews, and the held-out
    # suggestions above it with their precision.
    target_precision: float = 0.0
    auto_accept_global: float | None = None
    auto_accept: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: float = 0.0
    # When the run read the product vectors (ISO 8601): a later --only-new run scores the
    # products whose vector is newer than this.
    scored_from: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Taggers:
    score: Scorer  # Row indexes into the run's ids/vectors -> probabilities (rows x tags).
    supervised: np.ndarray  # Per tag: a supervised tagger contributes to its confidence.
    thresholds: np.ndarray  # Per tag: auto-accept threshold (inf: never).


def _confirmed(tag_column: dict[int, int], ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """(row of the product in ``ids``, target column or -1 for background) of the pairs a
    merchant reviewed (auto-accepted rows a merchant has not decided are not reviews)."""
    position = {int(pk): i for i, pk in enumerate(ids)}
    accepted: list[tuple[int, int]] = []
    rejected_only: set[int] = set()
    has_accepted: set[int] = set()
    decided = ProductTag.objects.filter(
        tag_id__in=list(tag_column),
        status__in=[ProductTagStatus.ACCEPTED, ProductTagStatus.REJECTED],
        decided_by_model=False,
    ).values_list("product_id", "tag_id", "status")
    for product_id, tag_id, status in decided:
        row = position.get(product_id)
        if row is None:
            continue
        if status == ProductTagStatus.ACCEPTED:
            accepted.append((row, tag_column[tag_id]))
            has_accepted.add(row)
        else:
            rejected_only.add(row)
    pairs = accepted + [(row, -1) for row in sorted(rejected_only - has_accepted)]
    rows = np.array([p[0] for p in pairs], dtype=np.int64)
    targets = np.array([p[1] for p in pairs], dtype=np.int64)
    return rows, targets, len(decided)


def _supervised_kind() -> str:
    kind = str(getattr(settings, "RECSITE_TAGGING_SUPERVISED", "stacked")).strip().lower()
    if kind not in SUPERVISED_KINDS:
        raise ValueError(
            f"RECSITE_TAGGING_SUPERVISED: expected one of {', '.join(SUPERVISED_KINDS)}, "
            f"got {kind!r}"
        )
    return kind


def _product_texts(ids: np.ndarray) -> list[str]:
    """Each product's own text (title, brand, description: not its category or tags)."""
    rows = {
        row["pk"]: row
        for row in Product.objects.filter(pk__in=[int(pk) for pk in ids]).values(
            "pk", "title", "brand", "description"
        )
    }
    return [
        product_embedding_text(
            title=rows[int(pk)]["title"],
            brand=rows[int(pk)]["brand"],
            description=rows[int(pk)]["description"],
        )
        for pk in ids
    ]


def _fit_logistic(
    vectors: np.ndarray, n_tags: int, rows: np.ndarray, targets: np.ndarray, seed: int
) -> Scorer:
    model = ml.SupervisedTagger(n_tags).fit(vectors[rows], targets, seed=seed)
    return lambda chunk: model.predict_proba(vectors[chunk])


def _fit_knn(vectors: np.ndarray, n_tags: int, rows: np.ndarray, targets: np.ndarray) -> Scorer:
    k = int(np.clip(len(rows) // 20, 3, 10))
    model = ml.SupervisedTagger(n_tags, method="knn", k=k).fit(vectors[rows], targets)
    return lambda chunk: model.predict_proba(vectors[chunk])


def _fit_tfidf(texts: list[str], n_tags: int, rows: np.ndarray, targets: np.ndarray) -> Scorer:
    """TF-IDF + LR on the products' own texts; -1 (background) is a class of its own."""
    model = ml.tfidf_lr_fit([texts[i] for i in rows], targets)
    classes = np.asarray(model.classes_, dtype=np.int64)
    keep = classes >= 0

    def score(chunk: np.ndarray) -> np.ndarray:
        proba = np.asarray(model.predict_proba([texts[i] for i in chunk]), dtype=np.float64)
        out = np.zeros((len(chunk), n_tags))
        out[:, classes[keep]] = proba[:, keep]
        return out

    return score


def _meta_stacker(
    held_proba: dict[str, np.ndarray],
    truth: np.ndarray,
    blended: np.ndarray,
    n_tags: int,
    seed: int,
) -> tuple[ml.MetaStacker, np.ndarray] | None:
    """The meta-learner (a learned log-linear pool) on the held-out reviews, with its out-of-fold
    probabilities of them, when it beats the weighted average there; else None.

    The comparison leans towards the weighted average: its weights were chosen on the same
    held-out rows it is scored on, while the meta-learner scores each row without having seen
    it. With fewer than ``META_MIN_HELD`` held-out reviews it is not tried (five folds of a few
    rows teach a meta-learner over every tag nothing).
    """
    if len(truth) < META_MIN_HELD or len(held_proba) < 2 or len(np.unique(truth)) < 2:
        return None
    meta, oof = ml.cross_fit_meta(held_proba, truth, n_tags=n_tags, seed=seed)
    meta_accuracy = float((np.argmax(oof, axis=1) == truth).mean())
    blend_accuracy = float((np.argmax(blended, axis=1) == truth).mean())
    logger.info(
        "Stacked tagger: meta-learner %.4f (out-of-fold) vs weighted average %.4f on %d "
        "held-out reviews",
        meta_accuracy,
        blend_accuracy,
        len(truth),
    )
    return (meta, oof) if meta_accuracy > blend_accuracy else None


def _stack_combiner(
    held_proba: dict[str, np.ndarray],
    truth: np.ndarray,
    tags: Sequence[Tag],
    counts: TaggingCounts,
    reviewed: np.ndarray,
    seed: int,
) -> tuple[list[str], Callable[[Mapping[str, np.ndarray]], np.ndarray], np.ndarray, str]:
    """How the stack combines its members, chosen on the held-out reviews: the members it
    reads, the combiner, the auto-accept thresholds measured on its held-out scores, and its
    part of the model version. Sets the counts' ``weights`` and ``stacker``."""
    weights = ml.choose_weights(held_proba, truth) if len(truth) else {"zero_shot": 1.0}
    counts.weights = weights
    held_scores = ml.blend(held_proba, weights)
    chosen = _meta_stacker(held_proba, truth, held_scores, len(tags), seed)
    if chosen is not None:
        meta, held_scores = chosen
        counts.stacker = "meta_lr"
        label = f"stacked_lr({';'.join(meta.members)};l2={meta.per_tag:g})"
        thresholds = _thresholds(held_scores, truth, tags, counts, reviewed)
        return list(meta.members), meta.predict_proba, thresholds, label
    counts.stacker = "weighted"
    mix = "+".join(f"{name}:{w:g}" for name, w in weights.items())
    thresholds = _thresholds(held_scores, truth, tags, counts, reviewed)
    return list(weights), lambda probas: ml.blend(probas, weights), thresholds, f"stacked({mix})"


def _fit_finetuned(
    texts: list[str],
    n_tags: int,
    rows: np.ndarray,
    targets: np.ndarray,
    held: tuple[np.ndarray, np.ndarray],
    seed: int,
) -> Scorer:
    """The encoder fine-tuned on the confirmed products' texts (accepted tags only: the model
    has no background class); the held-out reviews pick the best epoch."""
    keep = targets >= 0
    tuned = ml.FineTunedTagger(
        model_path=str(model_dir(encoder_model_path("tagging"))),
        n_classes=n_tags,
        epochs=settings.RECSITE_TAGGING_FINETUNE_EPOCHS,
        # Small review sets still get about 20 steps per epoch.
        batch_size=int(np.clip(int(keep.sum()) // 20, 8, 64)),
        device=settings.RECSITE_DEVICE,
        seed=seed,
        log=logger.info,
    ).fit(
        [texts[i] for i in rows[keep]],
        targets[keep],
        validation=([texts[i] for i in held[0]], held[1]) if len(held[0]) else None,
    )
    return lambda chunk: tuned.predict_proba([texts[i] for i in chunk])


def _thresholds(
    proba: np.ndarray,
    truth: np.ndarray,
    tags: Sequence[Tag],
    counts: TaggingCounts,
    reviewed: np.ndarray,
) -> np.ndarray:
    """Auto-accept thresholds from held-out reviewed rows (all "never" when switched off).

    A tag no merchant ever confirmed is never auto-accepted: nothing measured how its
    suggestions fare (the global threshold comes from other tags' reviews)."""
    target = float(settings.RECSITE_TAGGING_TARGET_PRECISION)
    counts.target_precision = target
    if target <= 0 or not len(truth):
        return np.full(len(tags), ml.NEVER)
    chosen = ml.auto_accept_thresholds(proba, truth, target=min(target, 1.0))
    unconfirmed = np.bincount(reviewed, minlength=len(tags)) == 0
    chosen.per_tag[unconfirmed] = ml.NEVER
    chosen.support[unconfirmed] = 0
    chosen.precision[unconfirmed] = np.nan
    finite = np.isfinite(chosen.global_threshold)
    counts.auto_accept_global = round(chosen.global_threshold, 6) if finite else None
    for i, tag in enumerate(tags):
        t = chosen.per_tag[i]
        counts.auto_accept[tag.name] = {
            "threshold": round(float(t), 6) if np.isfinite(t) else None,
            "own": bool(chosen.own[i]),
            "support": int(chosen.support[i]),
            "precision": None
            if np.isnan(chosen.precision[i])
            else round(float(chosen.precision[i]), 4),
        }
    return chosen.per_tag


def _zero_shot(
    tags: Sequence[Tag],
    vectors: np.ndarray,
    rows: np.ndarray,
    targets: np.ndarray,
    counts: TaggingCounts,
    seed: int,
) -> tuple[ml.ZeroShotTagger, str]:
    """The zero-shot tagger on the tagging encoder's vectors, its temperature calibrated on
    the reviewed products (``targets >= 0``) when there are two or more; and its version."""
    embedder = get_embedder("tagging")
    counts.encoder = embedder.model_name
    tag_vectors = np.asarray(
        embedder.embed([ml.tag_text(t.name, t.description) for t in tags]), dtype=np.float32
    )
    rng = np.random.default_rng(seed)
    sample = (
        vectors
        if len(vectors) <= STATS_SAMPLE
        else vectors[rng.choice(len(vectors), STATS_SAMPLE, replace=False)]
    )
    zero_shot = ml.ZeroShotTagger(tag_vectors).fit(sample)
    positive = targets >= 0
    if positive.sum() >= 2:
        zero_shot.calibrate(vectors[rows[positive]], targets[positive])
    counts.temperature = round(zero_shot.temperature, 4)
    version = f"{embedder.model_name}/zero-shot@t={counts.temperature:g}"
    counts.model_version = version
    return zero_shot, version


def taggers_build(
    tags: Sequence[Tag],
    ids: np.ndarray,
    vectors: np.ndarray,
    counts: TaggingCounts,
    seed: int,
) -> Taggers:
    """The run's scorer, which tags supervised taggers contribute to, and auto-accept
    thresholds, from the tags merchants reviewed. ``vectors`` are the tagging encoder's."""
    kind = _supervised_kind()
    rows, targets, counts.confirmed = _confirmed({t.pk: i for i, t in enumerate(tags)}, ids)
    positive = targets >= 0
    zero_shot, version = _zero_shot(tags, vectors, rows, targets, counts, seed)
    no_supervision = np.zeros(len(tags), dtype=bool)

    def zero_shot_scorer(chunk: np.ndarray) -> np.ndarray:
        return zero_shot.predict_proba(vectors[chunk])

    classes = np.unique(targets[positive])
    if positive.sum() < MIN_CONFIRMED or len(classes) < 2:
        # Too few reviews to hold any out: nothing measures a precision, nothing auto-accepted.
        counts.target_precision = float(settings.RECSITE_TAGGING_TARGET_PRECISION)
        return Taggers(zero_shot_scorer, no_supervision, np.full(len(tags), ml.NEVER))
    # Held-out reviews: which tagger wins, the stack's weights, the auto-accept thresholds.
    train, held = ml.stratified_split(targets, test_size=0.2, seed=seed)
    held = held[targets[held] >= 0]
    truth = targets[held]
    n = int(positive.sum())
    if kind == "stacked":
        texts = _product_texts(ids)
        fitters: dict[str, Callable[[np.ndarray, np.ndarray], Scorer]] = {
            "zero_shot": lambda r, t: zero_shot_scorer,
            "logistic": lambda r, t: _fit_logistic(vectors, len(tags), r, t, seed),
            "knn": lambda r, t: _fit_knn(vectors, len(tags), r, t),
            "tfidf_lr": lambda r, t: _fit_tfidf(texts, len(tags), r, t),
        }
        held_proba = {}
        for name, fit in fitters.items():
            try:
                held_proba[name] = fit(rows[train], targets[train])(rows[held])
            except ValueError as exc:  # E.g. TF-IDF on texts with no word seen twice.
                logger.info("Stacked tagger: member %s left out (%s)", name, exc)
        used, combine, thresholds, label = _stack_combiner(
            held_proba, truth, tags, counts, targets[positive], seed
        )
        # Refitted on every review: the combiner and thresholds were measured on the split fit.
        members = {name: fitters[name](rows, targets) for name in used}
        supervised = np.full(len(tags), any(name != "zero_shot" for name in used))
        counts.supervised_tags = int(supervised.sum())
        counts.model_version = f"{version}+{label}@n={n}"[:128]

        def stacked(chunk: np.ndarray) -> np.ndarray:
            return combine({name: score(chunk) for name, score in members.items()})

        return Taggers(stacked, supervised, thresholds)

    if kind == "finetune":
        single = _fit_finetuned(
            _product_texts(ids), len(tags), rows[train], targets[train], (rows[held], truth), seed
        )
    else:
        single = _fit_logistic(vectors, len(tags), rows[train], targets[train], seed)
    winner = no_supervision
    if len(held):
        winner = ml.per_tag_winner(
            truth,
            np.argmax(zero_shot_scorer(rows[held]), axis=1),
            np.argmax(single(rows[held]), axis=1),
            len(tags),
        )
    counts.supervised_tags = int(winner.sum())
    held_combined = ml.combine(zero_shot_scorer(rows[held]), single(rows[held]), winner)
    thresholds = _thresholds(held_combined, truth, tags, counts, targets[positive])
    if not winner.any():
        return Taggers(zero_shot_scorer, no_supervision, thresholds)
    if kind == "logistic":
        # Cheap enough to refit on every review; the fine-tuned encoder keeps the checked fit.
        single = _fit_logistic(vectors, len(tags), rows, targets, seed)
    counts.model_version = f"{version}+{kind}@n={n}"

    def combined(chunk: np.ndarray) -> np.ndarray:
        return ml.combine(zero_shot_scorer(chunk), single(chunk), winner)

    return Taggers(combined, winner, thresholds)
