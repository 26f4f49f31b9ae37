"""The social app: who follows or trusts whom, for social recommendations."""

from typing import Any

from django.apps import AppConfig


class SocialConfig(AppConfig):
    """Relationships between customers: their storage, ingestion (batch API, files, the Ciao
    importer), the reads behind the engine's social source, and the inspector's network panel.

    Its own app rather than part of ``recommender``: it builds on recommender's customers and
    events, and recommender never imports it. The engine's social source is framework-free code
    in ``recommender.ml.engine.social``; this app feeds it through the door recommender opens
    for it (``recommender.services.networks``).
    """

    name = "social"
    verbose_name = "Social"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from privacy.registry import ForgetHandler, forget_handler_register
        from recommender.services.networks import network_readers_register
        from recommender.signals import customer_forgotten

        from . import privacy, selectors

        forget_handler_register(
            ForgetHandler(
                name="social",
                export=privacy.relationships_export,
                purge=privacy.relationships_purge,
                check=privacy.relationships_check,
            )
        )
        network_readers_register(
            network=lambda customer_id, now: selectors.customer_network(
                customer_id=customer_id, now=now
            ),
            graph=selectors.relationship_graph,
        )
        # A forgotten customer leaves this process's cached networks at once (their edges went
        # with their row); other processes' within RECSITE_SOCIAL_NETWORK_CACHE_SECONDS.
        customer_forgotten.connect(
            _forget_cached_networks, weak=False, dispatch_uid="social.network_cache"
        )


def _forget_cached_networks(**kwargs: Any) -> None:
    from . import selectors

    selectors.network_cache_forget()
