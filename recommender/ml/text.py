"""The text embedded for a product, and its hash. Framework-free.

A template names the product fields to embed and the separators between them, for example
``"{title}. {category}. {brand}. {tags}. {description}"``. Rendering skips empty fields together
with the separator written before them, so a product without a brand reads
``"Mug. Kitchen. Blue, Gift. Stoneware mug."`` rather than ``"Mug. Kitchen. . Blue, Gift. ..."``.

The hash of the rendered text and the model name is what incremental re-embedding compares: a
product whose text and model are unchanged keeps its vector.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from string import Formatter

TEMPLATE_FIELDS = ("title", "category", "brand", "tags", "description")
DEFAULT_TEMPLATE = "{title}. {category}. {brand}. {tags}. {description}"
# MiniLM reads at most 256 word pieces (about 1,000 characters of English); a longer description
# only costs tokenisation time before being truncated by the model anyway.
DEFAULT_MAX_DESCRIPTION_CHARS = 1000
TAG_JOINER = ", "
# A separator that starts with one of these is shortened when the text before it already ends a
# clause, so "Mug." + ". " + "Kitchen" reads "Mug. Kitchen", not "Mug.. Kitchen".
_SEPARATOR_PUNCTUATION = ".,;:"
_CLAUSE_ENDINGS = ".,;:!?"
# Trimmed from the end of a truncated description so it does not end on a dangling comma.
_TRUNCATION_TRAILERS = " ,;:-"


@dataclass(frozen=True, slots=True)
class EmbeddingTextTemplate:
    """A validated template; build once and render many products with :meth:`render`.

    ``max_description_chars`` caps the description (cut at a word boundary where there is one);
    ``None`` means no cap.
    """

    template: str = DEFAULT_TEMPLATE
    max_description_chars: int | None = DEFAULT_MAX_DESCRIPTION_CHARS
    # (separator written before the field, field name), in template order.
    _parts: tuple[tuple[str, str], ...] = field(init=False, repr=False, compare=False)
    _prefix: str = field(init=False, repr=False, compare=False)
    _suffix: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_description_chars is not None and (
            isinstance(self.max_description_chars, bool)
            or not isinstance(self.max_description_chars, int)
            or self.max_description_chars < 1
        ):
            raise ValueError(
                "max_description_chars: must be a positive integer or None, "
                f"got {self.max_description_chars!r}"
            )
        prefix, parts, suffix = _parse_template(self.template)
        object.__setattr__(self, "_prefix", prefix)
        object.__setattr__(self, "_parts", parts)
        object.__setattr__(self, "_suffix", suffix)

    def render(
        self,
        *,
        title: str,
        category: str = "",
        brand: str = "",
        tags: Iterable[str] = (),
        description: str = "",
    ) -> str:
        """The product's text: whitespace collapsed, empty fields and their separators left out.

        Returns ``""`` when every field is empty.
        """
        if isinstance(tags, str):
            raise TypeError(f"tags: expected a list of strings, got the string {tags!r}")
        values = {
            "title": _clean(title),
            "category": _clean(category),
            "brand": _clean(brand),
            "tags": TAG_JOINER.join(t for t in (_clean(tag) for tag in tags) if t),
            "description": _truncate(_clean(description), self.max_description_chars),
        }
        text = ""
        for separator, name in self._parts:
            value = values[name]
            if not value:
                continue
            text = _join(text, separator, value) if text else value
        if not text:
            return ""
        return (self._prefix + _join(text, self._suffix, "")).strip()


def product_embedding_text(
    *,
    title: str,
    category: str = "",
    brand: str = "",
    tags: Iterable[str] = (),
    description: str = "",
    template: str = DEFAULT_TEMPLATE,
    max_description_chars: int | None = DEFAULT_MAX_DESCRIPTION_CHARS,
) -> str:
    """The text embedded for one product (see :class:`EmbeddingTextTemplate`)."""
    compiled = _compiled_template(template, max_description_chars)
    return compiled.render(
        title=title, category=category, brand=brand, tags=tags, description=description
    )


def embedding_text_hash(text: str, model_name: str) -> str:
    """SHA-256 hex digest of the model name and the embedded text.

    The model name is part of the hash so that switching models re-embeds every product; the
    NUL separator keeps ("ab", "c") and ("a", "bc") apart.
    """
    digest = hashlib.sha256()
    digest.update(model_name.encode("utf-8"))
    digest.update(b"\x00")
    digest.update(text.encode("utf-8"))
    return digest.hexdigest()


@lru_cache(maxsize=32)
def _compiled_template(template: str, max_description_chars: int | None) -> EmbeddingTextTemplate:
    return EmbeddingTextTemplate(template=template, max_description_chars=max_description_chars)


def _parse_template(template: str) -> tuple[str, tuple[tuple[str, str], ...], str]:
    if not isinstance(template, str):
        raise TypeError(f"template: expected a string, got {type(template).__name__}")
    prefix = ""
    parts: list[tuple[str, str]] = []
    pending = ""
    try:
        parsed = list(Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"template {template!r}: {exc}") from exc
    for literal, name, spec, conversion in parsed:
        pending += literal
        if name is None:
            continue
        if name not in TEMPLATE_FIELDS:
            raise ValueError(
                f"template {template!r}: unknown field {{{name}}}; "
                f"allowed fields are {', '.join(TEMPLATE_FIELDS)}"
            )
        if spec or conversion:
            raise ValueError(
                f"template {template!r}: field {{{name}}} must not have a format spec or conversion"
            )
        if any(existing == name for _, existing in parts):
            raise ValueError(f"template {template!r}: field {{{name}}} appears more than once")
        if parts:
            parts.append((pending, name))
        else:
            prefix = pending
            parts.append(("", name))
        pending = ""
    if not parts:
        raise ValueError(
            f"template {template!r}: names no field; use some of {', '.join(TEMPLATE_FIELDS)}"
        )
    return prefix, tuple(parts), pending


def _clean(value: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}: {value!r}")
    return " ".join(value.split())


def _truncate(text: str, limit: int | None) -> str:
    if limit is None or len(text) <= limit:
        return text
    cut = text[:limit]
    # Cut at the last word boundary unless the limit already falls on one.
    if text[limit] != " " and " " in cut:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(_TRUNCATION_TRAILERS)


def _join(text: str, separator: str, value: str) -> str:
    if separator and separator[0] in _SEPARATOR_PUNCTUATION and text[-1] in _CLAUSE_ENDINGS:
        separator = separator[1:]
    return text + separator + value
