"""Stage 1's candidate sources for one request, and their exact raw scores on any candidate.

Owns :class:`Generation`: what each source (collaborative, semantic, popularity, trending,
new arrivals, session, social, exposure) proposes from the bounded structures built at fit time
or the ``ann`` search, the request's filters (active, category, excluded), and each source's
exact raw score of any candidate, which stage 2 blends. Never reads an array over the whole
catalogue.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from recommender.ml import neighbours as nb
from recommender.ml.collaborative import top_k
from recommender.ml.interactions import DAY_SECONDS
from recommender.ml.sorted_search import in_sorted, rows_in_sorted, sorted_ids

from . import config
from . import sequential_source as sequential
from .data import AnnSearch, search_many
from .exposure import EXPOSURE_BORROWED, exposure_pool
from .social import SocialScores, social_scores

if TYPE_CHECKING:
    from .candidates import Profile
    from .hybrid import HybridEngine

# It proposes at most this many: they only fill slots (at most 5 in each 10 positions of a list
# of 100, plus some a rule may filter), and every candidate is scored by every source.
EXPOSURE_CANDIDATES = 64


class Generation:
    """Stage 1's sources for one request, and their exact raw scores on any candidate."""

    def __init__(
        self,
        engine: HybridEngine,
        profile: Profile,
        category_code: int,
        excluded_rows: np.ndarray,
        excluded_ids: set[int],
        *,
        now: float,
    ) -> None:
        self.engine = engine
        self.profile = profile
        self.code = category_code
        self.excluded_rows = excluded_rows
        self.excluded_ids = excluded_ids
        self.now = now
        self.collaborative_entries: tuple[np.ndarray, np.ndarray, np.ndarray] = (
            np.empty(0, np.int64),
            np.empty(0),
            np.empty(0, np.int64),
        )
        self._collab: tuple[np.ndarray, np.ndarray] | None = None
        self._session_cache: tuple[np.ndarray, np.ndarray, np.ndarray | None] | None = None
        self._social_cache: SocialScores | None = None
        self._ann_scores: dict[str, dict[int, float]] = {}
        self._row_ann: dict[str, dict[int, float]] = {}
        self._found: dict[int, float] | None = None
        # The exposure scores the exposure source computed: (rows ascending, scores).
        self._exposure_known: tuple[np.ndarray, np.ndarray] | None = None
        # The sequential model's query for this history (candidate_set sets it when wanted).
        self.sequential_query: sequential.Query | None = None

    # Filters ---------------------------------------------------------------------------

    def allowed(self, rows: np.ndarray) -> np.ndarray:
        engine = self.engine
        ok = np.asarray(engine._active[rows], dtype=bool)
        if self.code >= 0:
            ok &= np.asarray(engine._category[rows]) == self.code
        if len(self.excluded_rows):
            ok &= ~in_sorted(self.excluded_rows, rows)  # Ascending (candidate_set).
        return ok

    def _best(self, rows: np.ndarray, scores: np.ndarray, size: int) -> np.ndarray:
        """The ``size`` best allowed rows with a positive score, best first (ties by row).
        ``rows`` ascending; a partial sort (``top_k``), not a sort of every row."""
        rows = np.asarray(rows, dtype=np.int64)
        keep = self.allowed(rows) & (scores > 0)
        rows, scores = rows[keep], np.asarray(scores, dtype=np.float64)[keep]
        return rows[top_k(scores, size)]

    def _first_allowed(self, ranked: np.ndarray, size: int) -> np.ndarray:
        """The first ``size`` allowed rows of a list ranked at fit time, read a growing prefix
        at a time (most requests read ``2 x size``)."""
        found: list[np.ndarray] = []
        count, start, step = 0, 0, max(2 * size, 64)
        while count < size and start < len(ranked):
            chunk = np.asarray(ranked[start : start + step], dtype=np.int64)
            kept = chunk[self.allowed(chunk)][: size - count]
            found.append(kept)
            count += len(kept)
            start += step
            step *= 2
        return np.concatenate(found) if found else np.empty(0, dtype=np.int64)

    # Sources ---------------------------------------------------------------------------

    def propose(
        self, source: str, *, size: int, search: AnnSearch
    ) -> tuple[np.ndarray, np.ndarray, list[int]]:
        """``(rows, their raw scores, extra ids)``: the source's best allowed candidates."""
        engine = self.engine
        empty = np.empty(0, dtype=np.int64)
        if source == "collaborative":
            cols, sums = self._collaborative()
            rows = self._best(cols, sums, size)
            return rows, nb.lookup(cols, sums, rows), []
        if source == "semantic":
            return self._semantic(size, search)
        if source in ("popularity", "trending"):
            values = engine._pop if source == "popularity" else engine._trend
            if self.code >= 0:
                group = engine._cat_pop if source == "popularity" else engine._cat_trend
                ranked = group.row(self.code)[0]
            else:
                ranked = engine._pop_top if source == "popularity" else engine._trend_top
            # Ranked best first with positive scores only, ties by row (``_best_rows``).
            rows = self._first_allowed(ranked, size)
            return rows, np.asarray(values[rows], dtype=np.float64), []
        if source == "new_arrivals":
            rows = self._first_allowed(self._new_arrivals_now(), size)
            return rows, self._new_arrival_scores(rows), []
        if source == "session":
            return self._session_candidates(size, search)
        if source == "social":
            social = self.social()
            rows = self._best(social.rows, social.scores, size)
            return rows, nb.lookup(social.rows, social.scores, rows), []
        if source == "exposure":
            return self._exposure(size, search)
        if source == sequential.SOURCE:
            return sequential.propose(self, size=size, search=search)
        return empty, np.empty(0), []

    def social(self) -> SocialScores:
        """The social source's scores over every product the network touched (cached)."""
        if self._social_cache is None:
            profile = self.profile
            self._social_cache = social_scores(
                self.engine, profile.network, profile.own_ids, now=self.now
            )
        return self._social_cache

    def _collaborative(self) -> tuple[np.ndarray, np.ndarray]:
        """Collaborative sums over every product reachable from the history (sorted cols)."""
        if self._collab is None:
            cols, values, _ = self.collaborative_entries
            self._collab = nb.sum_by_column(cols, values, n_columns=self.engine.n_items)
        return self._collab

    def _semantic(self, size: int, search: AnnSearch) -> tuple[np.ndarray, np.ndarray, list[int]]:
        engine = self.engine
        if not self.profile.interests:
            return np.empty(0, dtype=np.int64), np.empty(0), []
        if self._category_searched_exactly():
            rows = engine.category_rows(self.code).astype(np.int64)
            rows = rows[engine._has_vector[rows]]
            scores = self._interest_cosines(rows)
            best = self._best(rows, scores, size)
            return best, self._interest_cosines(best), []
        return self._split_found(self._searched(size, search), size, key="semantic")

    def _category_searched_exactly(self) -> bool:
        """A requested category small enough to score exactly rather than search."""
        if self.code < 0:
            return False
        return len(self.engine.category_rows(self.code)) <= config.EXACT_SEARCH_MAX

    def _searched(self, size: int, search: AnnSearch) -> dict[int, float]:
        """The semantic search around each interest, best score per product (cached: the
        semantic and exposure sources share it)."""
        if self._found is not None:
            return self._found
        engine = self.engine
        # Over-fetch what the filters may remove: the excluded products, and with a large
        # category the products outside it.
        fetch = size + len(self.excluded_ids)
        if self.code >= 0:
            share = len(engine.category_rows(self.code)) / max(engine.n_items, 1)
            fetch = int(min(fetch / max(share, 1e-3), config.MAX_CANDIDATES_PER_SOURCE * 4))
        results = search_many(search, np.stack([i.vector for i in self.profile.interests]), fetch)
        ids = np.concatenate([found_ids for found_ids, _ in results]).astype(np.int64)
        scores = np.concatenate([cosines for _, cosines in results]).astype(np.float64)
        if self.excluded_ids:
            keep = ~in_sorted(sorted_ids(self.excluded_ids), ids)
            ids, scores = ids[keep], scores[keep]
        # The best score of each product over the interests.
        order = np.lexsort((-scores, ids))
        ids, scores = ids[order], scores[order]
        first = np.r_[True, ids[1:] != ids[:-1]] if len(ids) else np.zeros(0, dtype=bool)
        self._found = dict(zip(ids[first].tolist(), scores[first].tolist(), strict=True))
        return self._found

    def _exposure(self, size: int, search: AnnSearch) -> tuple[np.ndarray, np.ndarray, list[int]]:
        """Products without behaviour closest to the customer's interests: the newest
        ``EXPOSURE_POOL`` products without events (scored exactly, laid out by :mod:`.exposure`),
        and those of the semantic search (also products newer than the fit, which have no
        behaviour in it); at most ``EXPOSURE_CANDIDATES``. Their scores are kept for ``raw`` (one
        computation a request)."""
        engine = self.engine
        empty = np.empty(0, dtype=np.int64)
        if not self.profile.interests:
            return empty, np.empty(0), []
        pool = exposure_pool(engine)
        parts: list[np.ndarray] = []
        blind: dict[int, float] = {}
        extra: dict[int, float] = {}
        if self._category_searched_exactly():
            rows = engine.category_rows(self.code).astype(np.int64)
            parts.append(rows[engine._has_vector[rows] & ~engine._has_events[rows]])
        else:
            searched = self._searched(size, search)
            ids = np.fromiter(searched, dtype=np.int64, count=len(searched))
            scores = np.fromiter(searched.values(), dtype=np.float64, count=len(searched))
            rows = engine._rows_of(ids)
            newer = rows < 0
            if self.code < 0:  # Newer products have no category a filter could check.
                extra = {
                    pid: score
                    for pid, score in zip(ids[newer].tolist(), scores[newer].tolist(), strict=True)
                    if score > 0
                }
            rows, scores = rows[~newer], scores[~newer]
            cold = ~np.asarray(engine._has_events[rows], dtype=bool)
            rows, scores = rows[cold], scores[cold]
            sighted = np.asarray(engine._has_vector[rows], dtype=bool)
            # Fitted without a vector then: the search's score stands in (usually none).
            blind = dict(zip(rows[~sighted].tolist(), scores[~sighted].tolist(), strict=True))
            parts.append(rows)
        self._row_ann["exposure"] = blind
        self._ann_scores["exposure"] = extra
        # The pool's scores from its own layout; the rest (found by the search or in the
        # category) through the general path.
        others = np.setdiff1d(np.concatenate(parts), pool.rows).astype(np.int64)
        cols, sums = self._collaborative()
        rows = np.concatenate([pool.rows, others])
        scores = np.concatenate(
            [pool.scores(self._centroids(), cols, sums), self.raw("exposure", others)]
        )
        order = np.argsort(rows, kind="stable")
        rows, scores = rows[order], scores[order]
        self._exposure_known = (rows, scores)
        keep = self.allowed(rows) & (scores > 0)
        rows, scores = rows[keep], scores[keep]
        n = min(size, EXPOSURE_CANDIDATES)
        best = top_k(scores, n)
        if not extra:
            chosen = np.sort(rows[best])
            return chosen, self.raw("exposure", chosen), []
        # Ties: fitted products first, then by row or id (as the semantic source orders them).
        ranked = [(float(scores[i]), 0, int(rows[i])) for i in best.tolist()]
        ranked += [(score, 1, pid) for pid, score in extra.items()]
        ranked.sort(key=lambda t: (-t[0], t[1], t[2]))
        ranked = ranked[:n]
        chosen = np.array(sorted(r for _, kind, r in ranked if kind == 0), dtype=np.int64)
        return chosen, self.raw("exposure", chosen), [key for _, kind, key in ranked if kind == 1]

    def _split_found(
        self, found: Mapping[int, float], size: int, *, key: str
    ) -> tuple[np.ndarray, np.ndarray, list[int]]:
        """Search results as candidates: fitted rows with their exact scores, products newer
        than the fit (``extra`` ids) with the search's, the ``size`` best of both together.

        A fitted product that had no vector at the fit is scored by the search too, so
        ``found`` scores count for every product the engine's own vectors cannot score.
        """
        engine = self.engine
        ids = np.fromiter(found, dtype=np.int64, count=len(found))
        rows = engine._rows_of(ids)
        is_fitted = rows >= 0
        fitted = rows[is_fitted]
        # Fitted products without a vector at the fit: the search scores them (usually none).
        blind = np.zeros(len(rows), dtype=bool)
        blind[is_fitted] = ~np.asarray(engine._has_vector[fitted], dtype=bool)
        self._row_ann[key] = {
            int(row): found[int(pid)] for row, pid in zip(rows[blind], ids[blind], strict=True)
        }
        extra = {}
        if self.code < 0:  # Newer products have no category a filter could check.
            extra = {int(p): found[int(p)] for p in ids[~is_fitted] if found[int(p)] > 0}
        self._ann_scores[key] = extra
        fitted_scores = self.raw(key, fitted)
        keep = self.allowed(fitted) & (fitted_scores > 0)
        if not extra:  # The usual case, in numpy: the best ``size`` by score, then by row.
            kept, scores = fitted[keep], fitted_scores[keep]
            best = np.lexsort((kept, -scores))[:size]
            by_row = np.argsort(kept[best])
            return kept[best][by_row], scores[best][by_row], []
        pool = [
            (float(s), 0, int(r)) for r, s in zip(fitted[keep], fitted_scores[keep], strict=True)
        ]
        pool += [(s, 1, pid) for pid, s in extra.items()]
        pool.sort(key=lambda t: (-t[0], t[1], t[2]))
        chosen = pool[:size]
        rows_out = np.array(sorted(r for _, kind, r in chosen if kind == 0), dtype=np.int64)
        extra_out = [pid for _, kind, pid in chosen if kind == 1]
        return rows_out, self.raw(key, rows_out), extra_out

    def _centroids(self) -> np.ndarray:
        """The customer's interest vectors, ``(interests, d)`` float32."""
        return np.stack([i.vector for i in self.profile.interests]).astype(np.float32)

    def _interest_cosines(self, rows: np.ndarray) -> np.ndarray:
        engine = self.engine
        if not len(rows) or not self.profile.interests:
            return np.zeros(len(rows), dtype=np.float64)
        sims = np.asarray(engine._vectors[rows] @ self._centroids().T, dtype=np.float64).max(axis=1)
        return np.where(engine._has_vector[rows], sims, 0.0)

    def _new_arrivals_now(self) -> np.ndarray:
        """The slice of the newest-first list of products without events that is within
        ``new_arrival_days`` of now (created after now is not an arrival yet): their scores
        decrease along it, so it is ranked already."""
        engine = self.engine
        listed = engine._new_top
        if not len(listed):
            return np.empty(0, dtype=np.int64)
        created = -np.asarray(engine._created[listed], dtype=np.float64)  # Ascending.
        days = engine.config.new_arrival_days
        start = int(np.searchsorted(created, -self.now, side="left"))
        end = int(np.searchsorted(created, -(self.now - days * DAY_SECONDS), side="right"))
        return np.asarray(listed[start:end], dtype=np.int64)

    def _new_arrival_scores(self, rows: np.ndarray) -> np.ndarray:
        engine = self.engine
        days = engine.config.new_arrival_days
        # Created after ``now`` (a replayed past) is not an arrival yet.
        age_days = (self.now - engine._created[rows]) / DAY_SECONDS
        fresh = (~engine._has_events[rows]) & (age_days >= 0) & (age_days <= days)
        return np.where(fresh, np.power(0.5, np.maximum(age_days, 0.0) / days), 0.0)

    def _session(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """The session source's behavioural part (sorted cols, sums normalised to a maximum of
        1) and the unit mean vector of the context's products (None without vectors)."""
        if self._session_cache is None:
            engine = self.engine
            ctx = self.profile.context
            ones = np.ones(len(ctx))
            cooc_cols, cooc = engine._cooc.accumulate(ctx, ones)
            collab_cols, collab = engine._collaborative_model.accumulate(ctx, ones)
            cols = np.union1d(cooc_cols, collab_cols)
            behavioural = nb.lookup(cooc_cols, cooc, cols) + np.maximum(
                nb.lookup(collab_cols, collab, cols), 0.0
            )
            top = float(behavioural.max()) if len(behavioural) else 0.0
            if top > 0:
                behavioural = behavioural / top
            mean = None
            with_vector = ctx[engine._has_vector[ctx]] if len(ctx) else ctx
            if len(with_vector):
                centre = np.asarray(engine._vectors[with_vector], dtype=np.float64).mean(axis=0)
                norm = float(np.linalg.norm(centre))
                mean = (centre / norm).astype(np.float32) if norm > 0 else None
            self._session_cache = (cols, behavioural, mean)
        return self._session_cache

    def _session_scores(self, rows: np.ndarray) -> np.ndarray:
        cols, behavioural, mean = self._session()
        score = nb.lookup(cols, behavioural, rows)
        if mean is not None and len(rows):
            engine = self.engine
            cosines = np.asarray(engine._vectors[rows] @ mean, dtype=np.float64)
            score = score + 0.5 * np.maximum(np.where(engine._has_vector[rows], cosines, 0.0), 0)
        return score

    def _session_candidates(
        self, size: int, search: AnnSearch
    ) -> tuple[np.ndarray, np.ndarray, list[int]]:
        if not len(self.profile.context):
            return np.empty(0, dtype=np.int64), np.empty(0), []
        cols, _, mean = self._session()
        found: dict[int, float] = {}
        if mean is not None:
            for pid, score in search(mean, size + len(self.excluded_ids)):
                if pid not in self.excluded_ids:
                    found[int(pid)] = 0.5 * max(float(score), 0.0)
        behavioural_ids = self.engine._ids[cols]
        for pid in behavioural_ids.tolist():
            found.setdefault(int(pid), 0.0)
        return self._split_found(found, size, key="session")

    # Exact raw scores on the candidate set ----------------------------------------------

    def raw(self, source: str, rows: np.ndarray) -> np.ndarray:
        """The source's exact raw score of fitted ``rows``."""
        engine = self.engine
        rows = np.asarray(rows, dtype=np.int64)
        if source == "collaborative":
            cols, sums = self._collaborative()
            values = nb.lookup(cols, sums, rows)
            share = engine.config.cold_collaborative
            if share > 0:
                values = values + share * self._borrowed(rows)
        elif source == "semantic":
            values = self._interest_cosines(rows)
        elif source == "exposure":
            values = self._exposure_scores(rows)
        elif source == "popularity":
            values = np.asarray(engine._pop[rows], dtype=np.float64)
        elif source == "trending":
            values = np.asarray(engine._trend[rows], dtype=np.float64)
        elif source == "new_arrivals":
            values = self._new_arrival_scores(rows)
        elif source == "session" and len(self.profile.context):
            values = self._session_scores(rows)
        elif source == "social":
            social = self.social()
            values = nb.lookup(social.rows, social.scores, rows)
        elif source == sequential.SOURCE:
            values = sequential.raw(self, rows)
        else:
            values = np.zeros(len(rows), dtype=np.float64)
        return self._with_searched(source, rows, values)

    def _with_searched(self, source: str, rows: np.ndarray, values: np.ndarray) -> np.ndarray:
        """``values`` with the search's scores of fitted products without a vector then: they
        stand in for the cosine (the semantic, sequential and exposure scores; the session's
        similarity part)."""
        searched = self._row_ann.get(source)
        if not searched:
            return values
        for i, row in enumerate(rows.tolist()):
            if row not in searched:
                continue
            if source in ("semantic", sequential.SOURCE):
                values[i] = searched[row]
            elif source == "exposure":
                values[i] = 0.0 if self.engine._has_events[row] else searched[row]
            else:
                values[i] += searched[row]
        return values

    def score(self, source: str, rows: np.ndarray, extra: list[int]) -> np.ndarray:
        """The source's raw score at every candidate position: ``rows``, then ``extra`` ids."""
        known = self._ann_scores.get(source, {})
        tail = np.array([known.get(pid, 0.0) for pid in extra], dtype=np.float64)
        return np.concatenate([self.raw(source, rows), tail])

    def _borrowed(self, rows: np.ndarray) -> np.ndarray:
        """Per row, the best cosine-weighted collaborative score (negatives as 0) among its
        look-alikes (the products with events nearest to a product without any); 0 for rows
        with none."""
        engine = self.engine
        best = np.zeros(len(rows), dtype=np.float64)
        cols, sums = self._collaborative()
        if not engine._cold.nnz or not len(rows) or not len(cols):
            return best
        lookalikes, cosines, _ = engine._cold.gather(rows, np.ones(len(rows)))
        if not len(lookalikes):
            return best
        borrowed = cosines * np.maximum(nb.lookup(cols, sums, lookalikes), 0.0)
        # ``gather`` lists the entries row by row, in the order of ``rows``.
        cold = engine._cold
        lengths = cold.indptr[rows + 1] - cold.indptr[rows]
        position = np.repeat(np.arange(len(rows)), lengths)
        np.maximum.at(best, position, borrowed)
        return best

    def _exposure_scores(self, rows: np.ndarray) -> np.ndarray:
        """The exposure score of fitted ``rows``: 0 for a product with events; else its interest
        similarity plus ``EXPOSURE_BORROWED`` x what its look-alikes earn relative to the
        customer's best collaborative score."""
        engine = self.engine
        values = np.zeros(len(rows), dtype=np.float64)
        at = np.flatnonzero(~np.asarray(engine._has_events[rows], dtype=bool))
        if len(at) and self._exposure_known is not None:
            known, scores = self._exposure_known  # Rows distinct and ascending.
            where = rows_in_sorted(known, rows[at])
            hit = where >= 0
            values[at[hit]] = scores[where[hit]]
            at = at[~hit]
        if not len(at):
            return values
        values[at] = self._interest_cosines(rows[at])
        _, sums = self._collaborative()
        top = float(sums.max()) if len(sums) else 0.0
        if top > 0:
            values[at] += EXPOSURE_BORROWED * self._borrowed(rows[at]) / top
        return values
