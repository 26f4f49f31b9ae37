"""The engine artifact: one memory-mapped file of aligned arrays (:mod:`recommender.ml.arrays`).

Owns the artifact's format name and version, which fitted array goes under which name,
:func:`save_engine` (written atomically), :func:`load_engine` (mapped read-only: the arrays
stay in the page cache, shared by every process that maps the file) and
:func:`artifact_version`, which tells a current file from a former ``.npz`` one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from recommender.ml import neighbours as nb
from recommender.ml.arrays import (
    ArrayFileError,
    StringTable,
    is_array_file,
    load_arrays,
    save_arrays,
)

from .config import EngineConfig
from .reranker import Reranker

if TYPE_CHECKING:
    from .hybrid import HybridEngine

ARTIFACT_FORMAT = "recsite-engine"
ARTIFACT_VERSION = 2


class EngineArtifactError(ValueError):
    """A saved engine that cannot be served: another format or version, or a damaged file."""


def save_engine(engine: HybridEngine, path: str | os.PathLike[str]) -> Path:
    """Write the fitted ``engine`` to ``path`` (one memory-mappable file) atomically."""
    engine._check_fitted()
    meta = {
        "format": ARTIFACT_FORMAT,
        "version": ARTIFACT_VERSION,
        "config": engine.config.to_dict(),
        "fitted_at": engine.fitted_at,
        "categories": engine._category_names,
        "pop_max": engine._pop_max,
        "collaborative_model": engine.collaborative_model,
        "collaborative_note": engine.collaborative_note,
        "reranker": engine.reranker.to_dict() if engine.reranker is not None else None,
    }
    arrays: dict[str, np.ndarray] = {
        "ids": engine._ids,
        "vectors": engine._vectors,
        "has_vector": engine._has_vector,
        "active": engine._active,
        "has_events": engine._has_events,
        "created": engine._created,
        "category": engine._category,
        "category_rows": engine._category_rows,
        "category_offsets": engine._category_offsets,
        "titles_blob": engine._titles.blob,
        "titles_offsets": engine._titles.offsets,
        "pop": engine._pop,
        "trend": engine._trend,
        "pop_top": engine._pop_top,
        "trend_top": engine._trend_top,
        "new_top": engine._new_top,
        **engine._cat_pop.to_arrays("cat_pop"),
        **engine._cat_trend.to_arrays("cat_trend"),
        **engine._knn.to_arrays("knn"),
        **engine._cooc.to_arrays("cooc"),
        **engine._cold.to_arrays("cold"),
    }
    if engine._ease is not None:
        arrays.update(engine._ease.to_arrays("ease"))
    return save_arrays(path, arrays, meta=meta)


def artifact_version(path: str | os.PathLike[str]) -> int:
    """The format version of a saved engine: 2 for this format, 1 for the former ``.npz``
    files (which cannot be served: refit), 0 for anything else."""
    if is_array_file(path):
        try:
            return int(load_arrays(path).meta.get("version", 0))
        except (ArrayFileError, OSError):
            return 0
    try:
        with open(path, "rb") as handle:
            return 1 if handle.read(2) == b"PK" else 0
    except OSError:
        return 0


def load_engine(cls: type[HybridEngine], path: str | os.PathLike[str]) -> HybridEngine:
    """Map a saved engine read-only as an instance of ``cls``."""
    try:
        stored = load_arrays(path)
    except ArrayFileError as exc:
        version = artifact_version(path)
        hint = " (format 1: refit with `manage.py train`)" if version == 1 else ""
        raise EngineArtifactError(f"{path}: not a {ARTIFACT_FORMAT} file{hint}") from exc
    meta, arrays = stored.meta, stored.arrays
    if meta.get("format") != ARTIFACT_FORMAT or meta.get("version") != ARTIFACT_VERSION:
        raise EngineArtifactError(f"{path}: not a {ARTIFACT_FORMAT} v{ARTIFACT_VERSION} file")
    engine = cls(EngineConfig.from_dict(meta["config"]))
    engine._may_build_index = False
    engine.fitted_at = meta["fitted_at"]
    engine.collaborative_model = meta.get("collaborative_model", "")
    engine.collaborative_note = meta.get("collaborative_note", "")
    engine._category_names = list(meta["categories"])
    engine._pop_max = float(meta["pop_max"])
    if meta.get("reranker"):
        engine.reranker = Reranker.from_dict(meta["reranker"])
    engine._ids = arrays["ids"]
    engine._vectors = arrays["vectors"]
    engine._has_vector = arrays["has_vector"]
    engine._active = arrays["active"]
    engine._has_events = arrays["has_events"]
    engine._created = arrays["created"]
    engine._category = arrays["category"]
    engine._category_rows = arrays["category_rows"]
    engine._category_offsets = arrays["category_offsets"]
    engine._titles = StringTable(arrays["titles_blob"], arrays["titles_offsets"])
    engine._pop = arrays["pop"]
    engine._trend = arrays["trend"]
    engine._pop_top = arrays["pop_top"]
    engine._trend_top = arrays["trend_top"]
    engine._new_top = arrays["new_top"]
    engine._cat_pop = nb.Neighbours.from_arrays(arrays, "cat_pop")
    engine._cat_trend = nb.Neighbours.from_arrays(arrays, "cat_trend")
    engine._knn = nb.Neighbours.from_arrays(arrays, "knn")
    engine._cooc = nb.Neighbours.from_arrays(arrays, "cooc")
    engine._cold = nb.Neighbours.from_arrays(arrays, "cold")
    engine._ease = nb.Neighbours.from_arrays(arrays, "ease") if "ease_indptr" in arrays else None
    return engine
