"""A small catalogue whose titles name their tags, embedded by the hashing embedder."""

import pytest

from recommender.models import Product
from recommender.services.embeddings import get_embedder, product_embeddings_refresh
from tagging.services import tag_ensure

TAGS = {
    "dairy/yogurt": "Yogurt, plain or fruit.",
    "dairy/cheese": "Cheese of every kind.",
    "kitchen/mugs": "Mugs and cups for coffee or tea.",
    "kitchen/teapots": "Teapots and kettles.",
}
PRODUCTS = [
    ("p-yog-1", "Greek yogurt natural"),
    ("p-yog-2", "Strawberry yogurt"),
    ("p-che-1", "Cheddar cheese block"),
    ("p-che-2", "Goat cheese log"),
    ("p-mug-1", "Stoneware coffee mugs"),
    ("p-mug-2", "Enamel camping mugs"),
    ("p-tea-1", "Glass teapots with infuser"),
    ("p-tea-2", "Cast iron teapots"),
]


def catalogue_build() -> dict[str, Product]:
    """The tags (with their parents) and embedded products; returns {external id: Product}."""
    get_embedder.cache_clear()
    for name, description in TAGS.items():
        tag_ensure(name=name, description=description)
    products = {
        pid: Product.objects.create(external_id=pid, title=title) for pid, title in PRODUCTS
    }
    product_embeddings_refresh()
    return products


@pytest.fixture
def catalogue(db) -> dict[str, Product]:
    return catalogue_build()
