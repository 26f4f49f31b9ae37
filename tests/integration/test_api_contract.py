"""The API keeps its OpenAPI document: schemathesis against a real server, every check.

gunicorn (``gunicorn.conf.py``, production settings) serves a small shop with a fitted engine
on PostgreSQL and Redis, like production; schemathesis reads ``/api/schema/`` from it and runs
every phase (examples, coverage, fuzzing and the stateful sequences) with ``--checks all``: first
over every read (GET) operation with a read-only API token, then over every operation signed in
as an admin (who may call every operation, jobs and tokens included: API tokens never can). How
a read-only token's writes are answered is the permission matrix's job
(``tests/recommender/api/test_permissions.py``): schemathesis would only collect 403s there.
The run is deterministic (a fixed seed and example budget, no time budget, one schemathesis
worker). Any failure of any class fails the test, with schemathesis's report;
``schemathesis.toml`` holds its two settings and why.

The same run by hand, against a server you started: see README, "Tests".
"""

import logging
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import cast

import pytest
import redis
import requests
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from django.utils.crypto import get_random_string

from accounts.roles import Role
from accounts.services import api_token_create, user_create_with_role
from churn.models import ChurnScore, RiskBand
from experiments.services import ExperimentSpec, VariantSpec, experiment_create, experiment_start
from recommender.models import Customer, Product
from recommender.services.merchandising import merchandising_rule_create
from tagging.models import ProductTag, ProductTagSource, ProductTagStatus
from tagging.services import tag_create
from tests.conftest import REPO_ROOT
from tests.recommender.shop import fresh_serving, shop_build  # noqa: F401 (a fixture)

from .conftest import LiveWeb

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
logger = logging.getLogger(__name__)

# The budget: examples per operation and phase. With the seed, the run is the same every time.
SEED = 20_261_205
MAX_EXAMPLES = 25


@pytest.fixture
def contract_shop(fresh_serving):  # noqa: F811 (the fixture imported above)
    """A shop with something behind every kind of operation: products, customers, events, an
    index and a fitted engine, a tag with a suggestion, a merchandising rule."""
    shop_build()
    mugs = tag_create(name="kitchen/mugs", description="Mugs and cups.")
    ProductTag.objects.create(
        product=Product.objects.get(external_id="MUG-1"),
        tag=mugs,
        status=ProductTagStatus.PENDING,
        source=ProductTagSource.ZERO_SHOT,
        confidence=0.9,
    )
    merchandising_rule_create(
        data={
            "name": "Lamps up",
            "action": "boost",
            "target_kind": "category",
            "target_values": ["Home"],
            "factor": 1.5,
        }
    )
    now = timezone.now()
    ChurnScore.objects.bulk_create(
        ChurnScore(
            customer=customer, score=score, band=band, model_version="contract-1",
            drivers=[], as_of=now, computed_at=now,
        )
        for customer, (score, band) in zip(
            Customer.objects.order_by("external_id"),
            [(0.9, RiskBand.HIGH), (0.5, RiskBand.MEDIUM), (0.1, RiskBand.LOW)] * 3,
            strict=False,
        )
    )  # fmt: skip
    # A running experiment on customer and product lists (served lists take the variant path,
    # product lists when they name a customer_id or session_id) and a draft.
    experiment = experiment_create(
        spec=ExperimentSpec(
            name="contract",
            lists=["customer", "similar", "bought_together", "trending"],
            variants=[
                VariantSpec("control", 50),
                VariantSpec("popularity", 50, baseline="popularity"),
            ],
            starts_at=now,
        )
    )
    experiment_start(experiment=experiment)
    experiment_create(
        spec=ExperimentSpec(
            name="contract draft",
            lists=["session"],
            variants=[VariantSpec("control", 50), VariantSpec("none", 50, baseline="none")],
            starts_at=now,
        )
    )


def _schemathesis(
    web: LiveWeb, headers: dict[str, str], report: Path, only: list[str]
) -> tuple[int, str]:
    command = [
        sys.executable, "-m", "schemathesis.cli", "run", web.url("/api/schema/?format=json"),
        "--checks", "all", "--seed", str(SEED), "--max-examples", str(MAX_EXAMPLES),
        # One worker: requests in one order, so the same seed gives the same run every time
        # (two workers interleave writes and reads differently from run to run).
        "--workers", "1", "--generation-database", "none", "--no-color",
        # The credentials below are the run's; generated ones would only replace them.
        "--generation-with-security-parameters", "false",
        "--report", "junit", "--report-junit-path", str(report), *only,
    ]  # fmt: skip
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    done = subprocess.run(
        command,
        cwd=REPO_ROOT,  # Where schemathesis.toml is.
        env={**os.environ, "SCHEMATHESIS_HOOKS": ""},
        capture_output=True,
        text=True,
        timeout=600,
    )
    return done.returncode, done.stdout + done.stderr


def test_every_operation_keeps_the_openapi_document(contract_shop, start_web, tmp_path):
    # given: a read-only token and an admin's session (with its CSRF pair, for writes)
    _, read_token = api_token_create(name="contract-read", scopes=["read"])
    admin = user_create_with_role(
        username="contract-admin", password=get_random_string(20), role=Role.ADMIN
    )
    client = Client()
    client.force_login(cast(User, admin))
    csrf = get_random_string(32)
    admin_headers = {
        "Cookie": f"sessionid={client.cookies['sessionid'].value}; csrftoken={csrf}",
        "X-CSRFToken": csrf,
    }
    # Jobs the admin starts are queued under a prefix of their own, removed afterwards.
    prefix = f"contract-{uuid.uuid4().hex[:8]}:"
    # The test's secret key, so that the server reads the session signed here.
    web = start_web(
        workers=2, RECSITE_BROKER_KEY_PREFIX=prefix, DJANGO_SECRET_KEY=settings.SECRET_KEY
    )
    web.wait_until_up()
    try:
        # when: the read-only run first (the admin's run may revoke tokens)
        runs = [
            (
                "read-only token",
                {"Authorization": f"Bearer {read_token}"},
                ["--include-method", "GET"],
            ),
            ("admin session", admin_headers, []),
        ]
        results = [
            (label, *_schemathesis(web, headers, tmp_path / f"{label.split()[0]}.xml", only))
            for label, headers, only in runs
        ]
    finally:
        broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
        for key in broker.scan_iter(f"{prefix}*"):
            broker.delete(key)
    # then: no failure of any class (warnings, such as the read-only token's 403s, are expected)
    for label, code, output in results:
        # The figures (operations, cases, scenarios): pytest -o log_cli=true shows them.
        logger.info("schemathesis, %s:\n%s", label, output[-3_000:])
        assert code == 0, f"schemathesis with the {label} failed:\n{output[-20_000:]}"


def test_a_request_line_gunicorn_refuses_is_answered_in_json(start_web):
    # given: gunicorn's limit is 8190 bytes (gunicorn.conf.py); its own refusal was HTML
    _, token = api_token_create(name="contract-read", scopes=["read"])
    web = start_web(workers=1)
    web.wait_until_up()
    headers = {"Authorization": f"Bearer {token}"}
    # when
    within = requests.get(web.url("/api/v1/products/?q=" + "x" * 7000), headers=headers, timeout=30)
    beyond = requests.get(web.url("/api/v1/products/?q=" + "x" * 9000), headers=headers, timeout=30)
    # then
    assert (within.status_code, within.json()["count"]) == (200, 0)
    assert beyond.status_code == 400
    assert beyond.headers["Content-Type"] == "application/json"
    assert beyond.json() == {"detail": "Bad Request: Request Line is too large (9033 > 8190)"}
