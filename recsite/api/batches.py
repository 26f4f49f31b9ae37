"""What every batch ingestion endpoint shares: the ``items`` envelope, parsing each item with
the shared row parser, and the refusal that names every bad item (400 off the schema, 422 by a
rule; nothing written). Used by recommender's products, customers and events batches and the
social app's relationships batch."""

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from django.conf import settings

from recommender.ingestion.records import RowError, json_type
from recsite.api.errors import InvalidRequest, error_entry, summary

RecordT = TypeVar("RecordT")


def batch_items(data: Any) -> list[Any]:
    """The ``items`` list of a batch body, or 400 naming ``items`` and what is wrong."""
    if not isinstance(data, dict):
        message = f"expected a JSON object with an 'items' list, got {json_type(data)}"
        raise InvalidRequest(
            detail=f"items: {message}", errors=[error_entry(field="items", message=message)]
        )
    errors = [
        error_entry(field=str(key), message="unknown field") for key in data if key != "items"
    ]
    items: Any = data.get("items")
    maximum = settings.RECSITE_API_MAX_BATCH
    if items is None:
        errors.insert(0, error_entry(field="items", message="this field is required"))
    elif not isinstance(items, list):
        message = f"expected a list of objects, got {json_type(items)}"
        errors.insert(0, error_entry(field="items", message=message))
    elif not items:
        errors.insert(0, error_entry(field="items", message="must contain at least 1 item"))
    elif len(items) > maximum:
        message = f"at most {maximum} items per request, got {len(items)}"
        errors.insert(0, error_entry(field="items", message=message))
    if errors:
        raise InvalidRequest(detail=summary(errors), errors=errors)
    return items


def batch_parse(
    items: list[Any],
    parse: Callable[[Mapping[str, Any]], RecordT],
    *,
    id_field: str | None,
) -> tuple[list[RecordT], list[int], list[tuple[dict[str, Any], bool]]]:
    """Parse every item; return the good records, their positions, and every error found (each
    with whether it is a rule's refusal rather than a value off the documented schema).

    With ``id_field``, a second item with the same id is an error: a batch states each
    product or customer once, so a repeat is almost certainly a client bug.
    """
    parsed: list[RecordT] = []
    positions: list[int] = []
    errors: list[tuple[dict[str, Any], bool]] = []
    first_at: dict[str, int] = {}
    for index, raw in enumerate(items):
        if not isinstance(raw, dict):
            message = f"expected a JSON object, got {json_type(raw)}"
            errors.append((error_entry(index=index, field="items", message=message), False))
            continue
        try:
            record = parse(raw)
        except RowError as exc:
            errors.extend(
                (error_entry(index=index, field=e.field, message=e.message), e.rule)
                for e in exc.errors
            )
            continue
        if id_field is not None:
            key = record.external_id  # type: ignore[attr-defined]
            first = first_at.setdefault(key, index)
            if first != index:
                message = f"duplicate {id_field} in this batch (first at index {first})"
                errors.append((error_entry(index=index, field=id_field, message=message), True))
                continue
        parsed.append(record)
        positions.append(index)
    return parsed, positions, errors


def batch_refuse(found: list[tuple[dict[str, Any], bool]], *, total: int) -> InvalidRequest:
    """400 when any item is off the documented schema, else 422 (only rules refused items)."""
    errors = [entry for entry, _ in found]
    bad = len({e["index"] for e in errors})
    noun = "item is" if bad == 1 else "items are"
    first = errors[0]
    return InvalidRequest(
        detail=f"{bad} of {total} {noun} invalid; nothing was written. First: "
        f"items[{first['index']}].{first['field']}: {first['message']}",
        errors=errors,
        rule=all(rule for _, rule in found),
    )
