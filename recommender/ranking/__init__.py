"""Framework-free ranking: candidate fusion, diversity, exclusions and reasons.

Pure Python and numpy over plain values and arrays. Nothing here imports Django or
``recommender.ml`` (import-linter enforces both), so the rules stay testable in isolation.
"""
