"""recommender's models, re-exported so callers write ``from recommender.models import Product``."""

from .catalog import Product
from .customers import Customer
from .events import Event
from .jobs import Job

__all__ = ["Customer", "Event", "Job", "Product"]
