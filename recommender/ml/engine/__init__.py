"""The hybrid recommendation engine, in two stages: bounded candidate sources, then scoring,
fusion, diversity and reasons on the candidates only.

Framework-free: the services layer loads :class:`EngineData` from the database, calls
:meth:`HybridEngine.fit` in a worker, saves the artifact (one file), and web processes
:meth:`~HybridEngine.load` it: a read-only memory map shared by every process on the machine. A
customer's history is passed with every request (:class:`History`), so a new event changes the
next list at once, without refitting.

**Stage 1: candidates.** Every source proposes at most ``candidates_per_source`` products from a
bounded structure, never from an array over the catalogue:

- ``semantic``: the ``ann`` search (the serving vector index; offline, the engine's own search)
  per interest vector of the customer (q_u of :mod:`recommender.ml.interest`, split into up to
  ``n_interests`` clusters). A product is recommendable as soon as it is embedded, also when it
  is newer than the fit.
- ``collaborative``: the neighbour lists (:mod:`recommender.ml.neighbours`: EASE pruned to its
  largest weights where the dense model fits the memory budget, item-kNN above it) of the
  products in the history, weighted by behaviour and recency.
- ``popularity`` / ``trending``: lists ranked at fit time, per category too.
- ``new_arrivals``: products without events, newest first, ranked at fit time.
- ``social``: the products the customer's network (``History.network``: the people they follow
  or trust, and theirs) touched, weighted by edge, shared taste and recency, two hops with
  decay (:mod:`.social`).
- ``exposure``: products without behaviour (no event at the fit, or newer than it) nearest to
  the customer's interests (similarity, plus what their look-alikes earn from the collaborative
  source): the newest of them scored exactly, and those of the semantic search.
  They fill the exposure slots (``exposure_slots``) after fusion
  (:mod:`recommender.ranking.exposure`).
- ``session``: the co-occurrence and collaborative neighbours of the products in the current
  request (``context_ids``) and the ``ann`` search around them.

**Stage 2: scores.** Each source's raw score is computed exactly for every candidate (a cosine
with the engine's own vectors, a lookup in the accumulated neighbour sums...), normalised over
the candidates, weighted and blended; merchandising rules, diversity (MMR, category caps) and
reasons follow on the head. Offline (:meth:`HybridEngine.rank`) the same two stages run, so the
evaluation measures what is served; :meth:`HybridEngine.candidates` exposes stage 1 so the
evaluation can report its recall and the tuning page can re-blend without re-generating.

Products unknown to the fitted engine (embedded after the last fit) can appear in a history:
pass their vectors in ``History.extra_vectors`` (and titles in ``History.extra_titles``) and they
shape the interest vectors; as candidates they come through ``ann`` with its score.

Modules, each owning one part: :mod:`.config` (:class:`EngineConfig`, its validation and
bounds), :mod:`.data` (the inputs: :class:`EngineData`, :class:`History`), :mod:`.hybrid`
(:class:`HybridEngine`: the fitted arrays, lookups and public methods), :mod:`.fitting`,
:mod:`.candidates` and :mod:`.sources` (stage 1), :mod:`.scoring` (stage 2), :mod:`.lists`
(similar, bought together, trending), :mod:`.explanation` (reasons, the inspector) and
:mod:`.persistence` (the memory-mapped artifact). This package re-exports the public names;
import them from here.
"""

from __future__ import annotations

from .candidates import CandidateSet
from .config import (
    DEFAULT_BEHAVIOUR_WEIGHTS,
    DEFAULT_SOURCE_WEIGHTS,
    EXACT_SEARCH_MAX,
    MAX_CANDIDATES_PER_SOURCE,
    MAX_EXPOSURE_SLOTS,
    MAX_INTERESTS,
    MAX_NEIGHBOURS,
    ConfigError,
    EngineConfig,
)
from .data import AnnSearch, EngineData, Found, History, NetworkMember
from .explanation import Explanation, SourceCandidate
from .hybrid import HybridEngine
from .persistence import ARTIFACT_FORMAT, ARTIFACT_VERSION, EngineArtifactError
from .social import social_proof

__all__ = [
    "ARTIFACT_FORMAT",
    "ARTIFACT_VERSION",
    "DEFAULT_BEHAVIOUR_WEIGHTS",
    "DEFAULT_SOURCE_WEIGHTS",
    "EXACT_SEARCH_MAX",
    "MAX_CANDIDATES_PER_SOURCE",
    "MAX_EXPOSURE_SLOTS",
    "MAX_INTERESTS",
    "MAX_NEIGHBOURS",
    "AnnSearch",
    "CandidateSet",
    "ConfigError",
    "EngineArtifactError",
    "EngineConfig",
    "EngineData",
    "Explanation",
    "Found",
    "History",
    "HybridEngine",
    "NetworkMember",
    "SourceCandidate",
    "social_proof",
]
