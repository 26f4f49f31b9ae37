from django.db import models


class JobKind(models.TextChoices):
    """recommender's job kinds (registered with the jobs app by :mod:`recommender.jobs`)."""

    IMPORT_PRODUCTS = "import_products", "Import products"
    IMPORT_EVENTS = "import_events", "Import events"
    IMPORT_ONLINE_RETAIL = "import_online_retail", "Import Online Retail export"
    REINDEX = "reindex", "Reindex (embed + build index)"
    TRAIN = "train", "Fit the recommendation engine"
    EVALUATE = "evaluate", "Offline evaluation of the active configuration"
