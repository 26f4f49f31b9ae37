"""Rate limits across processes: two gunicorn workers sharing a Redis cache (production's
``RECSITE_CACHE_URL``) count one client's requests together, whichever worker answers."""

import uuid

import pytest
import requests
from django.conf import settings

from accounts.services import api_token_create

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_web_processes_sharing_a_redis_cache_count_a_token_together(start_web):
    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        pytest.skip("needs a Redis server (the suite's broker)")
    _, raw = api_token_create(name="shop", scopes=["read"])
    cache_url = f"{settings.CELERY_BROKER_URL}?key_prefix=rate-{uuid.uuid4().hex[:8]}"
    web = start_web(workers=2, RECSITE_CACHE_URL=cache_url, RECSITE_API_RATE_READ="3/hour")
    web.wait_until_up()
    headers = {"Authorization": f"Bearer {raw}"}

    # A connection per request: gunicorn's workers take turns accepting them.
    answers = [
        requests.get(web.url("/api/v1/products/"), headers=headers, timeout=30) for _ in range(4)
    ]

    # An hour's window: the four requests (well under a second) straddle two windows only if
    # they run across the turn of the hour, 60x less often than with a minute's.
    assert [a.status_code for a in answers] == [200, 200, 200, 429], web.log_text()
    assert 1 <= int(answers[3].headers["Retry-After"]) <= 3600
