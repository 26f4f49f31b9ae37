"""Fixtures shared by the evaluation tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import recommender.ml.engine.config as engine_config
from recommender.ml.vector_index import VectorIndex


@pytest.fixture
def own_index_builds(monkeypatch: pytest.MonkeyPatch) -> Callable[[int], list[int]]:
    """``limit(n)`` lowers the exact search's limit to ``n`` products, so that an engine without
    a search builds an hnswlib index of its own vectors (as above 20,000 products), and returns
    the list that records the size of every index built from then on (the builds are real)."""
    built: list[int] = []
    build = VectorIndex.build

    def counted(cls: type[VectorIndex], **kwargs: Any) -> VectorIndex:
        built.append(len(kwargs["ids"]))
        return build(**kwargs)

    def limit(n: int) -> list[int]:
        monkeypatch.setattr(engine_config, "EXACT_SEARCH_MAX", n)
        monkeypatch.setattr(VectorIndex, "build", classmethod(counted))
        return built

    return limit
