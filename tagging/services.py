"""Writes of tagging: the vocabulary, auto-tagging runs, merchants' decisions.

The one rule auto-tagging never breaks: a row a merchant decided (accepted or rejected) keeps
its status, decider and time whatever later runs suggest. A run only creates pending rows,
refreshes the confidence of pending rows, and drops pending rows it no longer suggests.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.db import IntegrityError, transaction
from django.utils import timezone

from jobs.choices import JobState
from jobs.models import Job
from recommender.ml.text import product_embedding_text
from recommender.models import Product, ProductEmbedding
from recommender.services.embeddings import embeddings_matrix, get_embedder

from . import ml
from .models import ProductTag, ProductTagSource, ProductTagStatus, Tag, TaggingJobKind
from .selectors import AUTO_SOURCES, tags_leaf

logger = logging.getLogger(__name__)

Progress = Callable[[float], None]

DEFAULT_THRESHOLD = 0.3
DEFAULT_TOP_K = 3
# Supervised tagging starts once merchants confirmed this many tags, on at least two tags.
MIN_CONFIRMED = 20
# Products scored per step: bounds memory (products x tags probabilities) and paces progress.
CHUNK = 4096
# Catalogue sample for each tag's cosine statistics (zero-shot standardisation).
STATS_SAMPLE = 20_000


class TagError(ValueError):
    """A refused tag write; ``field`` names the offending input for forms and the API."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


# Vocabulary -----------------------------------------------------------------------------------


def tag_name_normalise(name: str) -> str:
    """Whitespace collapsed, no empty path segments.

    ``" Dairy  eggs / yogurt "`` → ``"Dairy eggs/yogurt"``.
    """
    parts = [" ".join(part.split()) for part in str(name).split("/")]
    return "/".join(p for p in parts if p)


@transaction.atomic
def tag_ensure(*, name: str, description: str = "") -> tuple[Tag, bool]:
    """The tag of ``name`` (a path), created with its missing ancestors. (tag, created)."""
    name = tag_name_normalise(name)
    if not name:
        raise TagError("name", "must not be empty")
    if len(name) > Tag._meta.get_field("name").max_length:  # type: ignore[operator]
        raise TagError("name", "is longer than 255 characters")
    parent = None
    parts = name.split("/")
    for depth in range(1, len(parts)):
        parent, _ = Tag.objects.get_or_create(
            name="/".join(parts[:depth]), defaults={"parent": parent}
        )
    tag, created = Tag.objects.get_or_create(
        name=name, defaults={"parent": parent, "description": description.strip()}
    )
    return tag, created


def tag_create(*, name: str, description: str = "") -> Tag:
    """A new tag; its parent path (``a`` of ``a/b``) is created when missing."""
    normalised = tag_name_normalise(name)
    if Tag.objects.filter(name=normalised).exists():
        raise TagError("name", f"a tag named {normalised!r} already exists")
    try:
        tag, created = tag_ensure(name=name, description=description)
    except IntegrityError as exc:  # Created concurrently.
        raise TagError("name", f"a tag named {normalised!r} already exists") from exc
    if not created:
        raise TagError("name", f"a tag named {normalised!r} already exists")
    return tag


@dataclass(slots=True)
class ImportCounts:
    values: int = 0  # Distinct non-empty values of the column.
    tags_created: int = 0
    products_tagged: int = 0  # Product tags written (accepted, source import), with ancestors.

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def _column_values(column: str) -> dict[int, str]:
    if column == "category":
        pairs = Product.objects.exclude(category="").values_list("pk", "category")
        return {pk: tag_name_normalise(v) for pk, v in pairs if tag_name_normalise(v)}
    out = {}
    for pk, attributes in Product.objects.values_list("pk", "attributes").iterator():
        value = (attributes or {}).get(column)
        if value not in (None, ""):
            normalised = tag_name_normalise(str(value))
            if normalised:
                out[pk] = normalised
    return out


def _ancestors(name: str) -> list[str]:
    parts = name.split("/")
    return ["/".join(parts[:depth]) for depth in range(1, len(parts))]


@transaction.atomic
def tags_import_from_column(
    *, column: str = "category", assign: bool = False, user: User | None = None
) -> ImportCounts:
    """Create a tag for every distinct value of a catalogue column (``a/b`` → ``a`` and ``a/b``).

    ``assign`` also tags each product with its own value (and its ancestors) as accepted, source
    ``import``: the merchant's catalogue is the merchant's word. Rows a merchant already decided
    are left as they are. Idempotent.
    """
    values = _column_values(column)
    counts = ImportCounts(values=len(set(values.values())))
    existing = set(Tag.objects.values_list("name", flat=True))
    for name in sorted(set(values.values())):
        for path in [*_ancestors(name), name]:
            if path not in existing:
                tag_ensure(name=path)
                existing.add(path)
                counts.tags_created += 1
    if not assign:
        return counts
    tag_ids = dict(Tag.objects.values_list("name", "pk"))
    now = timezone.now()
    wanted = {
        (pk, tag_ids[path]) for pk, name in values.items() for path in [*_ancestors(name), name]
    }
    decided = set(
        ProductTag.objects.exclude(status=ProductTagStatus.PENDING).values_list(
            "product_id", "tag_id"
        )
    )
    rows = [
        ProductTag(
            product_id=pk,
            tag_id=tag_id,
            status=ProductTagStatus.ACCEPTED,
            source=ProductTagSource.IMPORT,
            decided_by=user,
            decided_at=now,
        )
        for pk, tag_id in sorted(wanted - decided)
    ]
    ProductTag.objects.bulk_create(
        rows,
        batch_size=2000,
        update_conflicts=True,
        unique_fields=["product", "tag"],
        update_fields=["status", "source", "decided_by", "decided_at", "updated_at"],
    )
    counts.products_tagged = len(rows)
    return counts


# Auto-tagging ---------------------------------------------------------------------------------


@dataclass(slots=True)
class TaggingCounts:
    products: int = 0  # Products scored.
    tags: int = 0  # Leaf tags scored.
    suggested: int = 0  # Suggestions written (created or refreshed, pending).
    kept_decisions: int = 0  # Suggestions skipped because a merchant already decided the pair.
    dropped: int = 0  # Pending suggestions no longer suggested, removed.
    confirmed: int = 0  # Accepted/rejected leaf tags learned from.
    supervised_tags: int = 0  # Tags where the supervised tagger beat zero-shot on held-out data.
    temperature: float = ml.DEFAULT_TEMPERATURE
    model_version: str = ""
    seconds: float = 0.0
    # When the run read the product vectors (ISO 8601): a later --only-new run scores the
    # products whose vector is newer than this.
    scored_from: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _last_tagging_scored_from() -> datetime | None:
    """When the last successful tag job read the product vectors (None: no such job).

    Not the job's start: its own embed step embeds new products after that, and the tag step
    then scores them."""
    job = (
        Job.objects.filter(kind=TaggingJobKind.TAG, state=JobState.SUCCEEDED)
        .order_by("-started_at")
        .only("started_at", "counts")
        .first()
    )
    if job is None:
        return None
    recorded = (job.counts.get("tag") or {}).get("scored_from")
    return datetime.fromisoformat(recorded) if recorded else job.started_at


def tagging_new_reasons() -> tuple[str, ...]:
    """Why a tagging job over new and edited products (``only_new``) would do something now;
    empty when it would not: no vocabulary, a tagging job already queued or running, or no
    product embedded, edited or added since the last one read the vectors. Beat asks this
    nightly (``tag-new-nightly``)."""
    if not Tag.objects.filter(children__isnull=True).exists():
        return ()
    busy = [JobState.QUEUED, JobState.RUNNING]
    if Job.objects.filter(kind=TaggingJobKind.TAG, state__in=busy).exists():
        return ()
    since = _last_tagging_scored_from()
    if since is None:
        return ("no tagging job has run yet",) if Product.objects.exists() else ()
    reasons = []
    model_name = get_embedder().model_name
    embedded = ProductEmbedding.objects.filter(model_name=model_name, updated_at__gte=since).count()
    if embedded:
        products = "1 product" if embedded == 1 else f"{embedded} products"
        reasons.append(f"{products} embedded anew since the last tagging job")
    waiting = Product.objects.filter(embedding_stale=True).count()
    if waiting:
        products = "1 product awaits" if waiting == 1 else f"{waiting} products await"
        reasons.append(f"{products} embedding")
    return tuple(reasons)


def _confirmed(tag_column: dict[int, int], ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """(row of the product in ``ids``, target column or -1 for background) of reviewed pairs."""
    position = {int(pk): i for i, pk in enumerate(ids)}
    accepted: list[tuple[int, int]] = []
    rejected_only: set[int] = set()
    has_accepted: set[int] = set()
    decided = ProductTag.objects.filter(
        tag_id__in=list(tag_column),
        status__in=[ProductTagStatus.ACCEPTED, ProductTagStatus.REJECTED],
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


Scorer = Callable[[np.ndarray], np.ndarray]
SUPERVISED_KINDS = ("logistic", "finetune")


def encoder_model_path() -> Path:
    """The local Hugging Face model directory the embedder uses (settings or the packaged one),
    resolved and checked exactly as the embedder does."""
    from recommender.ml.embedding import model_dir

    return model_dir(settings.RECSITE_MODEL_PATH)


def _supervised_kind() -> str:
    kind = str(getattr(settings, "RECSITE_TAGGING_SUPERVISED", "logistic")).strip().lower()
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


def _fit_finetuned(
    ids: np.ndarray,
    n_tags: int,
    rows: np.ndarray,
    targets: np.ndarray,
    held: tuple[np.ndarray, np.ndarray],
    seed: int,
) -> Scorer:
    """The encoder fine-tuned on the confirmed products' texts (accepted tags only: the model
    has no background class); the held-out reviews pick the best epoch."""
    texts = _product_texts(ids)
    keep = targets >= 0
    tuned = ml.FineTunedTagger(
        model_path=str(encoder_model_path()),
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


def _build_taggers(
    tags: Sequence[Tag], ids: np.ndarray, vectors: np.ndarray, counts: TaggingCounts, seed: int
) -> Scorer:
    """Zero-shot (calibrated on confirmed tags when any) and, when enough, the supervised one.

    The returned scorer takes row indexes into ``ids`` / ``vectors``.
    """
    kind = _supervised_kind()
    embedder = get_embedder()
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
    rows, targets, counts.confirmed = _confirmed({t.pk: i for i, t in enumerate(tags)}, ids)
    positive = targets >= 0
    if positive.sum() >= 2:
        zero_shot.calibrate(vectors[rows[positive]], targets[positive])
    counts.temperature = round(zero_shot.temperature, 4)
    version = f"{embedder.model_name}/zero-shot@t={counts.temperature:g}"

    def zero_shot_scorer(chunk: np.ndarray) -> np.ndarray:
        return zero_shot.predict_proba(vectors[chunk])

    classes = np.unique(targets[positive])
    if positive.sum() < MIN_CONFIRMED or len(classes) < 2:
        counts.model_version = version
        return zero_shot_scorer
    # Held-out check: the supervised tagger takes over a tag only where it wins there.
    train, held = ml.stratified_split(targets, test_size=0.2, seed=seed)
    held = held[targets[held] >= 0]
    if kind == "finetune":
        supervised = _fit_finetuned(
            ids, len(tags), rows[train], targets[train], (rows[held], targets[held]), seed
        )
    else:
        supervised = _fit_logistic(vectors, len(tags), rows[train], targets[train], seed)
    winner = np.zeros(len(tags), dtype=bool)
    if len(held):
        winner = ml.per_tag_winner(
            targets[held],
            np.argmax(zero_shot_scorer(rows[held]), axis=1),
            np.argmax(supervised(rows[held]), axis=1),
            len(tags),
        )
    counts.supervised_tags = int(winner.sum())
    if not winner.any():
        counts.model_version = version
        return zero_shot_scorer
    if kind == "logistic":
        # Cheap enough to refit on every review; the fine-tuned encoder keeps the checked fit.
        supervised = _fit_logistic(vectors, len(tags), rows, targets, seed)
    counts.model_version = f"{version}+{kind}@n={int(positive.sum())}"

    def score(chunk: np.ndarray) -> np.ndarray:
        return ml.combine(zero_shot_scorer(chunk), supervised(chunk), winner)

    score.winner = winner  # type: ignore[attr-defined]
    return score


def tagging_run(
    *,
    only_new: bool = False,
    threshold: float = DEFAULT_THRESHOLD,
    top_k: int = DEFAULT_TOP_K,
    seed: int = 0,
    progress: Progress | None = None,
) -> TaggingCounts:
    """Score active products against the leaf tags and store the suggestions as pending.

    ``only_new``: only products whose vector changed since the last successful tagging job
    started (new or edited products); every product when no job succeeded yet. Decided rows
    are never touched; pending rows of a scored product that are no longer suggested are
    removed.
    """
    started = time.perf_counter()
    counts = TaggingCounts()
    tags = tags_leaf()
    counts.tags = len(tags)
    embedder = get_embedder()
    counts.scored_from = timezone.now().isoformat()
    ids, vectors = embeddings_matrix(model_name=embedder.model_name)
    if not tags or not len(ids):
        counts.seconds = round(time.perf_counter() - started, 3)
        if progress is not None:
            progress(1.0)
        return counts
    score = _build_taggers(tags, ids, vectors, counts, seed)
    winner = getattr(score, "winner", np.zeros(len(tags), dtype=bool))
    todo: np.ndarray = np.arange(len(ids))
    since = _last_tagging_scored_from() if only_new else None
    if since is not None:
        # New products and edited ones got their vector after the last job read the vectors; a
        # product scored then and left without a suggestion is not scored again until it
        # changes.
        changed = set(
            ProductEmbedding.objects.filter(updated_at__gte=since).values_list(
                "product_id", flat=True
            )
        )
        todo = np.array([i for i, pk in enumerate(ids) if int(pk) in changed], dtype=np.int64)
    counts.products = len(todo)
    for start in range(0, len(todo), CHUNK):
        chunk = todo[start : start + CHUNK]
        proba = score(chunk)
        suggestions = ml.suggest(proba, threshold=threshold, top_k=top_k)
        _store(
            product_ids=[int(ids[i]) for i in chunk],
            suggestions=[
                (
                    int(ids[chunk[s.row]]),
                    tags[s.tag].pk,
                    s.confidence,
                    ProductTagSource.SUPERVISED if winner[s.tag] else ProductTagSource.ZERO_SHOT,
                )
                for s in suggestions
            ],
            model_version=counts.model_version,
            counts=counts,
        )
        if progress is not None:
            progress(min(start + CHUNK, len(todo)) / len(todo))
    if progress is not None and not len(todo):
        progress(1.0)
    counts.seconds = round(time.perf_counter() - started, 3)
    logger.info(
        "Auto-tagging: %d products, %d tags, %d suggestions (%d decided pairs kept) in %.1f s",
        counts.products,
        counts.tags,
        counts.suggested,
        counts.kept_decisions,
        counts.seconds,
    )
    return counts


@transaction.atomic
def _store(
    *,
    product_ids: list[int],
    suggestions: list[tuple[int, int, float, str]],
    model_version: str,
    counts: TaggingCounts,
) -> None:
    existing: dict[tuple[int, int], tuple[int, str, str]] = {
        (p, t): (pk, status, source)
        for pk, p, t, status, source in ProductTag.objects.filter(
            product_id__in=product_ids
        ).values_list("pk", "product_id", "tag_id", "status", "source")
    }
    fresh = []
    suggested_pairs = set()
    for product_id, tag_id, confidence, source in suggestions:
        suggested_pairs.add((product_id, tag_id))
        current = existing.get((product_id, tag_id))
        if current is not None and current[1] != ProductTagStatus.PENDING:
            counts.kept_decisions += 1
            continue
        fresh.append(
            ProductTag(
                product_id=product_id,
                tag_id=tag_id,
                status=ProductTagStatus.PENDING,
                source=source,
                confidence=round(confidence, 6),
                model_version=model_version,
            )
        )
    # update_fields never names status or the decision fields: even a row decided between the
    # read above and this write keeps the merchant's decision.
    ProductTag.objects.bulk_create(
        fresh,
        batch_size=2000,
        update_conflicts=True,
        unique_fields=["product", "tag"],
        update_fields=["source", "confidence", "model_version", "updated_at"],
    )
    counts.suggested += len(fresh)
    stale = [
        pk
        for pair, (pk, status, source) in existing.items()
        if status == ProductTagStatus.PENDING
        and source in AUTO_SOURCES
        and pair not in suggested_pairs
    ]
    # Filtered on status again: a row decided meanwhile is not a stale suggestion.
    counts.dropped += ProductTag.objects.filter(
        pk__in=stale, status=ProductTagStatus.PENDING
    ).delete()[0]


# Decisions ------------------------------------------------------------------------------------


def _person(user: User | AnonymousUser | None) -> User | None:
    return user if isinstance(user, User) else None


@transaction.atomic
def product_tags_decide(
    *, ids: Iterable[int], status: str, user: User | AnonymousUser | None = None
) -> int:
    """Accept or reject product tags (bulk). Returns how many rows were decided.

    Accepting ``a/b`` also accepts ``a`` on the product (source merchant), unless a merchant
    rejected ``a`` there: a yogurt is a dairy product. Rejecting touches only the row itself.
    """
    if status not in (ProductTagStatus.ACCEPTED, ProductTagStatus.REJECTED):
        raise TagError("decision", f"must be 'accepted' or 'rejected', got {status!r}")
    ids = sorted({int(i) for i in ids})
    rows = list(ProductTag.objects.select_for_update().filter(pk__in=ids).select_related("tag"))
    missing = set(ids) - {r.pk for r in rows}
    if missing:
        raise TagError("ids", f"no product tag with id {', '.join(map(str, sorted(missing)))}")
    now, person = timezone.now(), _person(user)
    ProductTag.objects.filter(pk__in=ids).update(
        status=status, decided_by=person, decided_at=now, updated_at=now
    )
    if status == ProductTagStatus.ACCEPTED:
        names = {a for r in rows for a in _ancestors(r.tag.name)}
        tag_ids = dict(Tag.objects.filter(name__in=names).values_list("name", "pk"))
        wanted = {
            (r.product_id, tag_ids[a]) for r in rows for a in _ancestors(r.tag.name) if a in tag_ids
        }
        current = {
            (p, t): s
            for p, t, s in ProductTag.objects.filter(
                product_id__in={p for p, _ in wanted}, tag_id__in=set(tag_ids.values())
            ).values_list("product_id", "tag_id", "status")
        }
        for product_id, tag_id in sorted(wanted):
            state = current.get((product_id, tag_id))
            if state == ProductTagStatus.PENDING:
                ProductTag.objects.filter(product_id=product_id, tag_id=tag_id).update(
                    status=status, decided_by=person, decided_at=now, updated_at=now
                )
            elif state is None:
                ProductTag.objects.create(
                    product_id=product_id,
                    tag_id=tag_id,
                    status=status,
                    source=ProductTagSource.MERCHANT,
                    decided_by=person,
                    decided_at=now,
                )
    logger.info("%s %d product tags", status, len(rows))
    return len(rows)


@transaction.atomic
def product_tag_set(
    *, product: Product, tag: Tag, status: str, user: User | AnonymousUser | None = None
) -> ProductTag:
    """A merchant tags a product directly (or reverses a decision): the row becomes theirs."""
    row, _ = ProductTag.objects.get_or_create(
        product=product,
        tag=tag,
        defaults={
            "status": ProductTagStatus.PENDING,
            "source": ProductTagSource.MERCHANT,
        },
    )
    product_tags_decide(ids=[row.pk], status=status, user=user)
    row.refresh_from_db()
    return row
