"""Offline evaluation of the recommenders: protocols, metrics and the side-by-side report.

Framework-free: the services layer loads :class:`recommender.ml.engine.EngineData` from the
database; everything here works on arrays.
"""
