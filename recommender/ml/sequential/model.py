"""The fitted sequential model: numpy weights, the forward pass, and the artifact.

:class:`SequentialModel` is what a web process holds: every weight as a read-only numpy array
mapped from one artifact file (:mod:`recommender.ml.arrays`, the engine's format: no pickle,
shared by every process through the page cache), and a numpy forward pass for one history
(measured faster than torch for one 50-step history, bench/sequential.py). Nothing per request
reads an array over the catalogue: a query reads the rows of the history's products, and a
candidate's score reads its row (:meth:`scores_of`) or, for a product newer than the fit, its
language-model vector (:meth:`scores_of_vectors`).

Scores are tied to the language-model vectors: a product's output embedding is
``W v + b (+ e)``, so ``logit = q . (W v + b) (+ q . e) = u . v + q . b (+ q . e)`` with
``u = W^T q``. The unit ``u`` is therefore a query for the cosine vector index over the product
vectors (:meth:`Query.search_vector`): its nearest products are the products with the highest
language-model part of the logit, found among every embedded product, those added after the fit
included.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from recommender.ml.arrays import ArrayFileError, load_arrays, save_arrays
from recommender.ml.sorted_search import IdRows

from .config import SequentialConfig
from .sequences import gap_buckets, last_window

ARTIFACT_FORMAT = "recsite-sequential"
ARTIFACT_VERSION = 1
_LN_EPS = 1e-5
_GELU_C = np.float32(math.sqrt(2.0 / math.pi))


class SequentialArtifactError(ValueError):
    """A file that is not a sequential model artifact of this version."""


@dataclass(frozen=True)
class Query:
    """One history through the model: the query state ``q`` and its projection ``u``."""

    q: np.ndarray  # (d,) float32
    u: np.ndarray  # (D,) float32: W^T q, the language-model part of the query
    offset: float  # q . b: the part of every logit that does not depend on the product
    steps: int  # products of the history the model read

    @property
    def norm(self) -> float:
        return float(np.linalg.norm(self.u))

    def search_vector(self) -> np.ndarray | None:
        """``u`` as a unit vector for the cosine index (None when the history said nothing)."""
        norm = self.norm
        return (self.u / norm).astype(np.float32) if norm > 0 else None

    @property
    def reference(self) -> float:
        """The highest language-model logit any unit vector can get: scores are reported as
        ``exp(logit - reference)``, positive, comparable within one request."""
        return self.norm + self.offset


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """torch's LayerNorm over the last axis. The same floats as ``x.mean`` and friends
    (``mean`` is this sum divided by the count), without their Python wrappers, which cost more
    than the arithmetic on a history's 50 x 64 values; the centred values are computed once."""
    d = x.shape[-1]
    centred = x - np.add.reduce(x, axis=-1, keepdims=True) / d
    var = np.add.reduce(centred * centred, axis=-1, keepdims=True) / d
    out = centred / np.sqrt(var + _LN_EPS)
    out *= w
    out += b
    return out


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + np.tanh(_GELU_C * (x + 0.044715 * (x * x * x))))


class SequentialModel:
    """Fitted weights, aligned with ``item_ids`` (ascending product keys)."""

    def __init__(
        self,
        *,
        item_ids: np.ndarray,
        items: np.ndarray,
        weights: Mapping[str, np.ndarray],
        config: SequentialConfig,
        event_types: Sequence[str],
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        self.item_ids = item_ids
        self.items = items  # (n, d) float32: every fitted product's output embedding
        self.weights = dict(weights)
        self.config = config
        self.event_types = tuple(event_types)
        self._type_code = {name: i for i, name in enumerate(self.event_types)}
        self.meta: dict[str, Any] = dict(meta or {})
        # rows_of's lookup (a table by id, 4 bytes a product), built with the model: where a
        # web server loads it, in its master before it forks.
        self._id_rows = IdRows(item_ids)
        self._masks: dict[int, np.ndarray] = {}

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def dim(self) -> int:
        return int(self.items.shape[1]) if self.items.ndim == 2 else self.config.dim

    def rows_of(self, product_ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """Model rows of ``product_ids`` (-1 for products the fit did not know)."""
        return self._id_rows(product_ids)

    def project(self, vectors: np.ndarray) -> np.ndarray:
        """Embeddings of products from their language-model vectors alone, ``(m, d)``."""
        w, b = self.weights["proj_w"], self.weights["proj_b"]
        return np.asarray(vectors, dtype=np.float32) @ w.T + b

    # Queries -------------------------------------------------------------------------------

    def query(
        self,
        *,
        product_ids: Sequence[int],
        event_types: Sequence[str],
        timestamps: Sequence[float],
        extra_vectors: Mapping[int, np.ndarray] | None = None,
    ) -> Query | None:
        """The query of one history (any order; read as first events per product in time
        order, the newest ``max_len``). Products the fit did not know count through their
        vector in ``extra_vectors``; others are skipped. None when nothing is left."""
        extra = extra_vectors or {}
        n = len(product_ids)
        if not n:
            return None
        stamps = np.asarray(timestamps, dtype=np.float64)
        order = np.lexsort((np.arange(n), stamps))
        pids = np.asarray(product_ids, dtype=np.int64)[order]
        _, first = np.unique(pids, return_index=True)
        first.sort()
        pids, stamps = pids[first], stamps[order][first]
        kinds = [event_types[int(i)] for i in order[first]]
        rows = self.rows_of(pids)
        usable = (rows >= 0) | np.array([int(p) in extra for p in pids.tolist()], dtype=bool)
        if not usable.any():
            return None
        pids, stamps, rows = pids[usable], stamps[usable], rows[usable]
        kinds = [k for k, ok in zip(kinds, usable.tolist(), strict=True) if ok]
        other = len(self.event_types)
        types = np.array([self._type_code.get(k, other) for k in kinds], dtype=np.int64)
        gaps = gap_buckets(stamps)
        steps = min(len(pids), self.config.max_len)
        pids, rows, types, gaps = pids[-steps:], rows[-steps:], types[-steps:], gaps[-steps:]
        embedded = np.empty((steps, self.dim), dtype=np.float32)
        known = rows >= 0
        if known.any():
            embedded[known] = self.items[rows[known]]
        for i in np.flatnonzero(~known).tolist():
            embedded[i] = self.project(np.asarray(extra[int(pids[i])])[None])[0]
        q = self._encode_last(embedded, types, gaps)
        u = (self.weights["proj_w"].T @ q).astype(np.float32)
        offset = float(self.weights["proj_b"] @ q)
        return Query(q=q, u=u, offset=offset, steps=steps)

    def _causal(self, steps: int) -> np.ndarray:
        """The (steps, steps) mask hiding later steps from earlier ones (built once a length)."""
        mask = self._masks.get(steps)
        if mask is None:
            mask = np.triu(np.full((steps, steps), -np.inf, dtype=np.float32), k=1)
            mask.flags.writeable = False
            self._masks[steps] = mask
        return mask

    def _encode_last(self, embedded: np.ndarray, types: np.ndarray, gaps: np.ndarray) -> np.ndarray:
        """The final hidden state at the last step (numpy; float32). The last layer computes
        only that step's row (its keys and values still come from every step)."""
        w = self.weights
        steps = len(embedded)
        max_len = self.config.max_len
        types = np.minimum(types, len(w["type_emb"]) - 1)
        x = _layer_norm(embedded, w["in_ln_w"], w["in_ln_b"])
        x = x + w["type_emb"][types] + w["gap_emb"][gaps] + w["pos_emb"][max_len - steps :]
        heads = self.config.heads
        d = x.shape[1]
        dh = d // heads
        scale = math.sqrt(dh)
        last_layer = self.config.layers - 1
        for i in range(self.config.layers):
            p = f"b{i}_"
            h = _layer_norm(x, w[p + "ln1_w"], w[p + "ln1_b"])
            qkv = h @ w[p + "qkv_w"].T + w[p + "qkv_b"]
            q, k, v = qkv[:, :d], qkv[:, d : 2 * d], qkv[:, 2 * d :]
            if i == last_layer:
                # Only the last step's state is read: its query row attends to every step.
                q, x = q[-1:], x[-1:]
            rows = len(q)
            q = q.reshape(rows, heads, dh).transpose(1, 0, 2)
            k = k.reshape(steps, heads, dh).transpose(1, 0, 2)
            v = v.reshape(steps, heads, dh).transpose(1, 0, 2)
            scores = q @ k.transpose(0, 2, 1) / scale
            if rows > 1:
                scores += self._causal(steps)
            scores = np.exp(scores - np.maximum.reduce(scores, axis=-1, keepdims=True))
            scores /= np.add.reduce(scores, axis=-1, keepdims=True)
            out = (scores @ v).transpose(1, 0, 2).reshape(rows, d)
            x = x + out @ w[p + "out_w"].T + w[p + "out_b"]
            h = _layer_norm(x, w[p + "ln2_w"], w[p + "ln2_b"])
            hidden = _gelu(h @ w[p + "ff1_w"].T + w[p + "ff1_b"])
            x = x + hidden @ w[p + "ff2_w"].T + w[p + "ff2_b"]
        last = _layer_norm(x[-1:], w["out_ln_w"], w["out_ln_b"])[0]
        return np.asarray(last, dtype=np.float32)

    # Scores --------------------------------------------------------------------------------

    def logits_of(self, query: Query, rows: np.ndarray) -> np.ndarray:
        """Logits of fitted model ``rows`` (reads those rows only)."""
        rows = np.asarray(rows, dtype=np.int64)
        if not len(rows):
            return np.empty(0, dtype=np.float64)
        return np.asarray(self.items[rows] @ query.q, dtype=np.float64)

    def logits_of_vectors(self, query: Query, vectors: np.ndarray) -> np.ndarray:
        """Logits of products from their language-model vectors ``(m, D)`` (unknown to the
        fit: no per-product embedding)."""
        vectors = np.asarray(vectors, dtype=np.float32).reshape(-1, len(query.u))
        return np.asarray(vectors @ query.u, dtype=np.float64) + query.offset

    def score_catalogue(self, query: Query) -> np.ndarray:
        """Every fitted product's logit (offline evaluation and training only: it reads the
        whole catalogue)."""
        return np.asarray(self.items @ query.q, dtype=np.float64)

    # Artifact ------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the model to ``path`` (one memory-mappable file), atomically."""
        meta = {
            "format": ARTIFACT_FORMAT,
            "version": ARTIFACT_VERSION,
            "config": self.config.to_dict(),
            "event_types": list(self.event_types),
            **{k: v for k, v in self.meta.items() if k not in ("format", "version")},
        }
        arrays = {"item_ids": self.item_ids, "items": self.items}
        arrays.update({f"w_{name}": value for name, value in self.weights.items()})
        return save_arrays(path, arrays, meta=meta)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SequentialModel:
        """Map a saved model read-only (the file is opened for reading only)."""
        try:
            stored = load_arrays(path)
        except ArrayFileError as exc:
            raise SequentialArtifactError(f"{path}: not a {ARTIFACT_FORMAT} file") from exc
        meta = stored.meta
        if meta.get("format") != ARTIFACT_FORMAT or meta.get("version") != ARTIFACT_VERSION:
            raise SequentialArtifactError(
                f"{path}: not a {ARTIFACT_FORMAT} v{ARTIFACT_VERSION} file"
            )
        weights = {
            name[2:]: value for name, value in stored.arrays.items() if name.startswith("w_")
        }
        return cls(
            item_ids=stored["item_ids"],
            items=stored["items"],
            weights=weights,
            config=SequentialConfig.from_dict(meta["config"]),
            event_types=meta["event_types"],
            meta={k: v for k, v in meta.items() if k not in ("config", "event_types")},
        )


def window_of(
    model: SequentialModel, items: np.ndarray, types: np.ndarray, gaps: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A sequence's newest window, padded for the torch network (training's validation)."""
    return last_window(items, types, gaps, max_len=model.config.max_len, pad=model.n_items)
