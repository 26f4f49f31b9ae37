"""Framework-free machine learning: embedders, text templates, vector indexes, models.

Nothing under this package imports Django, DRF or Celery, and torch is imported only inside the
functions that need it, so web processes that never embed never pay for it.
"""
