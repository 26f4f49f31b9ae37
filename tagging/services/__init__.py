"""Writes of tagging, one module per concern; this package re-exports the public names.

- :mod:`.vocabulary`: tags and imports of a catalogue column as tags (:class:`TagError`).
- :mod:`.vectors`: the tagging encoder's product vectors (the index's, or tagging's own).
- :mod:`.taggers`: the taggers a run scores with and the auto-accept thresholds, built from
  the shop's reviewed tags.
- :mod:`.runs`: auto-tagging runs (suggestions, auto-accept) and when one is due.
- :mod:`.decisions`: merchants' decisions, which always win over runs.
"""

from .decisions import product_tag_set, product_tags_decide
from .runs import DEFAULT_THRESHOLD, DEFAULT_TOP_K, tagging_new_reasons, tagging_run
from .taggers import MIN_CONFIRMED, SUPERVISED_KINDS, TaggingCounts
from .vectors import tagging_vectors, tagging_vectors_refresh
from .vocabulary import (
    ImportCounts,
    TagError,
    tag_create,
    tag_ensure,
    tag_name_normalise,
    tags_import_from_column,
)

__all__ = [
    "DEFAULT_THRESHOLD",
    "DEFAULT_TOP_K",
    "MIN_CONFIRMED",
    "SUPERVISED_KINDS",
    "ImportCounts",
    "TagError",
    "TaggingCounts",
    "product_tag_set",
    "product_tags_decide",
    "tag_create",
    "tag_ensure",
    "tag_name_normalise",
    "tagging_new_reasons",
    "tagging_run",
    "tagging_vectors",
    "tagging_vectors_refresh",
    "tags_import_from_column",
]
