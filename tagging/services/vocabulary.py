"""Writes of the tag vocabulary: tags (with their parent paths) and imports of a catalogue
column as tags. Owns :class:`TagError`, the error every tagging write raises."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from recommender.models import Product

from ..models import ProductTag, ProductTagSource, ProductTagStatus, Tag


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
