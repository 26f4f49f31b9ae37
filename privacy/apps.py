"""The privacy app: forgetting that reaches every derived artifact, the audit log, the access
export, retention, and the shareable reports (privacy-safe aggregates)."""

from django.apps import AppConfig


class PrivacyConfig(AppConfig):
    """Built on every app that holds customer data (recommender, churn, tagging), which never
    import it: it learns of a forgotten customer through ``recommender.signals`` and of changes
    through model signals and its middleware, and other apps plug their data in through
    :mod:`privacy.registry`."""

    name = "privacy"
    verbose_name = "Privacy"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from accounts.models import ApiToken
        from jobs.registry import Step, job_kind_register
        from recommender.models import MerchandisingRule, RecommendationConfig
        from recommender.signals import customer_forgotten

        from . import checks, receivers  # noqa: F401 (checks: registered on import)
        from .registry import forget_handler_register
        from .services import builtin, forgetting, reports

        job_kind_register(
            forgetting.PURGE_KIND,
            forgetting.PURGE_LABEL,
            (
                Step("rows", 0.05, forgetting.step_rows),
                Step("engine", 0.6, forgetting.step_engine),
                Step("churn", 0.3, forgetting.step_churn),
                Step("verify", 0.05, forgetting.step_verify),
            ),
        )
        job_kind_register(
            reports.REPORT_KIND,
            reports.REPORT_LABEL,
            (Step("release", 1.0, reports.step_release),),
        )
        for handler in builtin.handlers():
            forget_handler_register(handler)
        uid = "privacy"
        customer_forgotten.connect(receivers.on_customer_forgotten, dispatch_uid=uid)
        post_save.connect(receivers.on_config_saved, sender=RecommendationConfig, dispatch_uid=uid)
        post_save.connect(receivers.on_rule_saved, sender=MerchandisingRule, dispatch_uid=uid)
        post_delete.connect(receivers.on_rule_deleted, sender=MerchandisingRule, dispatch_uid=uid)
        post_save.connect(receivers.on_token_saved, sender=ApiToken, dispatch_uid=uid)
