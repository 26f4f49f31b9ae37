from django.db import models


class JobKind(models.TextChoices):
    IMPORT_PRODUCTS = "import_products", "Import products"
    IMPORT_EVENTS = "import_events", "Import events"
    IMPORT_ONLINE_RETAIL = "import_online_retail", "Import Online Retail export"
    REINDEX = "reindex", "Reindex (embed + build index)"
    TRAIN = "train", "Fit the recommendation engine"
    EVALUATE = "evaluate", "Offline evaluation of the active configuration"
    # Run by other apps, which register their steps (``job_kind_register``): the job table and
    # its progress, history and stale-job sweep are shared.
    TAG = "tag", "Auto-tag products"
    CHURN_SCORE = "churn_score", "Score churn risk"


class JobState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class BuildStatus(models.TextChoices):
    BUILDING = "building", "Building"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"
    RETIRED = "retired", "Retired (file removed)"
