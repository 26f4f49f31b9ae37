"""The API conventions every app shares: the error format (:mod:`.errors`), request fields and
the strict input serializer (:mod:`.fields`), pagination, parsers, renderers, the OpenAPI schema
class, the query-parameter guard, path lookups (:mod:`.lookups`, :mod:`.catalog`) and the shared
output shapes (:mod:`.serializers`). DRF's settings point here (``REST_FRAMEWORK`` in
``recsite/settings/base.py``); each app's ``api`` package holds only its own endpoints.

It uses recommender's framework-free value parsing (``recommender.ingestion``) and, for the
catalogue lookups only, its models and selectors, never an app's interfaces or services.
"""
