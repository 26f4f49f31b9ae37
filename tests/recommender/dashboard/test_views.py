"""The dashboard's overview, products, customer inspector and jobs pages (Django test client)."""

import gzip
import json
import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import User

from jobs.choices import JobState
from jobs.models import Job
from recommender.choices import JobKind
from recommender.models import Customer, IndexBuild, Product, RecommendationLog
from recommender.services.recommendations import customer_recommendations, similar_products
from recommender.services.search import product_search
from tests.recommender.shop import T0, add_event

pytestmark = pytest.mark.django_db

PAGES = [
    "/dashboard/",
    "/dashboard/products/",
    "/dashboard/products/INK-1/",
    "/dashboard/customers/",
    "/dashboard/customers/C1/",
]


def chart(response, chart_id):
    """The plotly spec a page ships in ``{{ spec|json_script:chart_id }}``."""
    match = re.search(
        rf'<script id="{chart_id}" type="application/json">(.*?)</script>',
        response.content.decode(),
        re.S,
    )
    assert match, f"no chart {chart_id} on the page"
    return json.loads(match.group(1))


def ids_in(html, table_id):
    """External ids linked from one table, in order."""
    table = re.search(rf'<table[^>]*id="{table_id}".*?</table>', html, re.S)
    assert table, f"no table {table_id}"
    return re.findall(r'href="/dashboard/products/([^/"]+)/"', table.group(0))


def section(html, section_id):
    match = re.search(rf'<section[^>]*id="{section_id}".*?</section>', html, re.S)
    assert match, f"no section {section_id}"
    return match.group(0)


def nav_labels(response):
    nav = re.search(r'<nav class="main-nav".*?</nav>', response.content.decode(), re.S)
    assert nav is not None
    return re.findall(r">([^<]+)</a>", nav.group(0))


# Access ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [*PAGES, "/dashboard/jobs/", "/dashboard/jobs/history/"])
def test_signed_out_visitors_are_sent_to_the_login_page(client, url):
    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


def test_root_sends_signed_in_people_to_the_overview(client, merchandiser):
    client.force_login(merchandiser)

    response = client.get("/")

    assert response.status_code == 302
    assert response["Location"] == "/dashboard/"


@pytest.mark.parametrize("url", PAGES)
def test_merchandisers_and_admins_open_every_inspection_page(
    client, merchandiser, admin_user, shop, url
):
    for user in (merchandiser, admin_user):
        client.force_login(user)
        assert client.get(url).status_code == 200


def test_a_login_without_a_role_gets_403(client, shop):
    client.force_login(User.objects.create_user(username="nobody", password="x-pass-12345"))

    assert client.get("/dashboard/").status_code == 403


@pytest.mark.parametrize("url", ["/dashboard/jobs/", "/dashboard/jobs/history/"])
def test_a_merchandiser_cannot_open_the_jobs_page(client, merchandiser, url):
    client.force_login(merchandiser)

    response = client.get(url)

    assert response.status_code == 403
    assert "Not allowed" in response.content.decode()
    assert "This page is for admins." in response.content.decode()


def test_a_merchandiser_cannot_start_a_job(client, merchandiser):
    client.force_login(merchandiser)

    response = client.post("/dashboard/jobs/", {"kind": "reindex"})

    assert response.status_code == 403
    assert Job.objects.count() == 0


def test_the_jobs_and_reports_links_are_shown_to_admins_only(client, merchandiser, admin_user):
    client.force_login(merchandiser)
    merch_nav = nav_labels(client.get("/dashboard/"))
    client.force_login(admin_user)
    admin_nav = nav_labels(client.get("/dashboard/"))

    assert "Jobs" not in merch_nav
    assert "Jobs" in admin_nav
    assert [label for label in admin_nav if label not in merch_nav] == ["Jobs", "Reports"]


def test_only_the_open_page_is_current_in_the_menu(client, merchandiser):
    client.force_login(merchandiser)

    overview = client.get("/dashboard/").content.decode()
    products = client.get("/dashboard/products/").content.decode()

    assert re.findall(r'<a href="([^"]+)" class="current"', overview) == ["/dashboard/"]
    assert re.findall(r'<a href="([^"]+)" class="current"', products) == ["/dashboard/products/"]


# plotly.js ------------------------------------------------------------------------------------


def test_plotly_js_is_served_by_the_app_gzipped_and_cached(client):
    import plotly

    url = f"/dashboard/plotly-{plotly.__version__}.min.js"

    response = client.get(url, HTTP_ACCEPT_ENCODING="gzip, br")
    again = client.get(url, HTTP_IF_NONE_MATCH=response["ETag"])

    assert response.status_code == 200
    assert response["Content-Type"] == "text/javascript; charset=utf-8"
    assert response["Content-Encoding"] == "gzip"
    assert response["Cache-Control"] == "public, max-age=31536000, immutable"
    body = gzip.decompress(response.content)
    assert body.startswith(b"/**\n* plotly.js v")
    assert again.status_code == 304


def test_pages_point_at_the_local_plotly_and_no_cdn(client, merchandiser):
    import plotly

    client.force_login(merchandiser)

    html = client.get("/dashboard/").content.decode()

    assert f'data-plotly-src="/dashboard/plotly-{plotly.__version__}.min.js"' in html
    assert "cdn" not in html.lower()
    assert '<script src="/static/recsite/dashboard.js" defer></script>' in html


# Overview -------------------------------------------------------------------------------------


def test_overview_shows_the_shop_in_figures_and_charts(client, merchandiser, shop):
    client.force_login(merchandiser)

    response = client.get("/dashboard/")
    html = response.content.decode()

    assert 'id="kpi-products">8<' in html
    assert 'id="kpi-customers">8<' in html
    assert 'id="kpi-events">17<' in html
    assert 'id="kpi-embedding-coverage">100%<' in html
    assert f'id="kpi-index">#{IndexBuild.objects.get().pk}<' in html
    assert "vector index, 8 items" in html
    assert f'id="kpi-engine">#{shop.pk}<' in html
    # Nothing has been served yet.
    assert 'id="kpi-rec-coverage">\u2013<' in html
    events = chart(response, "chart-events")
    assert [trace["name"] for trace in events["data"]] == ["purchase"]
    assert sum(events["data"][0]["y"]) == 17
    # Baskets on days 0, 1, 2, 3, 4, 20, 21, 22 from T0.
    assert events["data"][0]["x"] == [
        (T0 + timedelta(days=d)).date().isoformat() for d in (0, 1, 2, 3, 4, 20, 21, 22)
    ]
    customers = chart(response, "chart-customers")
    per_day = next(t for t in customers["data"] if t["name"] == "per day")
    assert per_day["y"] == [1, 1, 1, 1, 1, 1, 1, 1]
    embedding = chart(response, "chart-embedding")
    assert embedding["data"][0]["values"] == [8, 0]


def test_overview_counts_recommendation_coverage_from_served_lists(client, merchandiser, shop):
    RecommendationLog.objects.create(kind="customer", product_ids=["INK-1", "MUG-1"])
    RecommendationLog.objects.create(kind="customer", product_ids=["MUG-1", "GONE-9"])
    client.force_login(merchandiser)

    html = client.get("/dashboard/").content.decode()

    # INK-1 and MUG-1 of 8 active products: 25%.
    assert 'id="kpi-rec-coverage">25%<' in html
    assert "(2 products in the last 2 lists served)" in html


def test_overview_of_an_empty_shop_says_what_is_missing(client, merchandiser):
    client.force_login(merchandiser)

    html = client.get("/dashboard/").content.decode()

    assert 'id="kpi-products">0<' in html
    assert 'id="kpi-index">none<' in html
    assert "vector index: run a reindex" in html
    assert "engine: not fitted yet" in html
    assert html.count("No events yet.") == 2
    assert "No active products yet." in html
    assert "No jobs have run yet." in html
    assert "(merchandiser)" in html


# Products -------------------------------------------------------------------------------------


def test_products_are_filtered_by_category_and_text(client, merchandiser, shop):
    client.force_login(merchandiser)

    kitchen = client.get("/dashboard/products/", {"category": "Kitchen"}).content.decode()
    ink = client.get("/dashboard/products/", {"q": "ink"}).content.decode()

    assert ids_in(kitchen, "product-list") == ["COF-1", "MUG-1", "MUG-2"]
    assert ids_in(ink, "product-list") == ["INK-1", "INK-2", "INK-3"]


def test_products_are_filtered_by_active_and_embedded(client, merchandiser, shop):
    Product.objects.filter(external_id="LAMP-2").update(is_active=False)
    Product.objects.filter(external_id="MUG-2").update(embedding_stale=True)
    client.force_login(merchandiser)

    inactive = client.get("/dashboard/products/", {"active": "no"}).content.decode()
    not_embedded = client.get("/dashboard/products/", {"embedded": "no"}).content.decode()
    embedded = client.get("/dashboard/products/", {"embedded": "yes"}).content.decode()

    assert ids_in(inactive, "product-list") == ["LAMP-2"]
    assert ids_in(not_embedded, "product-list") == ["MUG-2"]
    assert len(ids_in(embedded, "product-list")) == 7


def test_an_unknown_category_is_refused_next_to_the_field(client, merchandiser, shop):
    client.force_login(merchandiser)

    response = client.get("/dashboard/products/", {"category": "Garden"})
    html = response.content.decode()

    assert response.status_code == 200
    assert (
        '<ul class="errorlist" id="id_category_error"><li>Select a valid choice. Garden is not '
        "one of the available choices.</li></ul>"
    ) in html
    assert 'id="product-list"' not in html


def test_product_list_is_paginated(client, merchandiser, shop):
    Product.objects.bulk_create(
        [Product(external_id=f"X-{n:03d}", title=f"Extra {n}") for n in range(60)]
    )
    client.force_login(merchandiser)

    first = client.get("/dashboard/products/", {"q": "X-"}).content.decode()
    second = client.get("/dashboard/products/", {"q": "X-", "page": 2}).content.decode()

    assert len(ids_in(first, "product-list")) == 50
    assert ids_in(second, "product-list") == [f"X-{n:03d}" for n in range(50, 60)]
    assert "Page 2 of 2 (60 in all)" in second
    assert 'href="?q=X-&amp;page=1"' in second


def test_semantic_search_lists_the_search_service_results(client, merchandiser, shop):
    client.force_login(merchandiser)
    expected = [p.external_id for p, _ in product_search(query="coffee mug", k=20)]

    html = client.get("/dashboard/products/", {"search": "coffee mug"}).content.decode()

    assert ids_in(html, "search-results") == expected
    assert len(expected) == 8
    assert "Nearest to “coffee mug”" in html


def test_product_page_shows_both_neighbour_lists_and_logs_nothing(client, merchandiser, shop):
    Product.objects.filter(external_id="INK-1").update(tags=["ink", "hp"])
    client.force_login(merchandiser)

    html = client.get("/dashboard/products/INK-1/").content.decode()

    assert RecommendationLog.objects.count() == 0
    product = Product.objects.get(external_id="INK-1")
    semantic = [i.product.external_id for i in similar_products(product=product, k=10).items]
    behavioural = [
        i.product.external_id
        for i in similar_products(product=product, k=10, mode="behavioural").items
    ]
    assert (
        re.findall(r'href="/dashboard/products/([^/"]+)/"', section(html, "similar-semantic"))
        == semantic
    )
    assert (
        re.findall(r'href="/dashboard/products/([^/"]+)/"', section(html, "similar-behavioural"))
        == behavioural
    )
    assert behavioural[:2] == ["INK-2", "INK-3"]
    assert (
        '<dd id="merchant-tags"><span class="badge accent">ink</span> '
        '<span class="badge accent">hp</span> </dd>'
    ) in html


def test_product_page_without_an_engine_still_shows_semantic_neighbours(
    client, merchandiser, fresh_serving
):
    from recommender.ingestion.records import ProductRecord
    from recommender.services.embeddings import product_embeddings_refresh
    from recommender.services.index import vector_index_build
    from recommender.services.ingestion import products_upsert

    products_upsert(records=[ProductRecord("A", "Red mug"), ProductRecord("B", "Blue mug")])
    product_embeddings_refresh()
    vector_index_build()
    client.force_login(merchandiser)

    response = client.get("/dashboard/products/A/")
    html = response.content.decode()

    assert response.status_code == 200
    assert re.findall(
        r'href="/dashboard/products/([^/"]+)/"', section(html, "similar-semantic")
    ) == ["B"]
    assert "No recommendation engine has been fitted yet" in section(html, "similar-behavioural")


def test_an_unknown_product_is_404_with_a_message(client, merchandiser, shop):
    client.force_login(merchandiser)

    response = client.get("/dashboard/products/NOPE/")

    assert response.status_code == 404
    assert "Product &#x27;NOPE&#x27; not found." in response.content.decode()


# Customers ------------------------------------------------------------------------------------


def test_customers_are_found_by_id(client, merchandiser, shop):
    client.force_login(merchandiser)

    html = client.get("/dashboard/customers/", {"q": "C1"}).content.decode()

    listed = re.findall(r'href="/dashboard/customers/([^/"]+)/"', html)
    assert listed == ["C1"]
    assert '<td class="num">2</td>' in html  # C1's two purchases


def test_customers_are_ordered_by_activity(client, merchandiser, shop):
    add_event(Customer.objects.get(external_id="C4"), "INK-1", at=T0 + timedelta(days=40))
    client.force_login(merchandiser)

    most = client.get("/dashboard/customers/", {"order": "events"}).content.decode()
    recent = client.get("/dashboard/customers/", {"order": "recent"}).content.decode()
    bad = client.get("/dashboard/customers/", {"order": "shoe size"})

    # C4 now has 3 events (2 purchases + 1), like C2 (3 inks) and C5 (3 items).
    assert re.findall(r'href="/dashboard/customers/([^/"]+)/"', most) == [
        "C2", "C4", "C5", "C1", "C3", "C6", "C7", "C8",
    ]  # fmt: skip
    assert re.findall(r'href="/dashboard/customers/([^/"]+)/"', recent)[:4] == [
        "C4", "C8", "C7", "C6",
    ]  # fmt: skip
    assert "Select a valid choice. shoe size is not one of the available choices." in (
        bad.content.decode()
    )


def test_inspector_shows_the_served_list_with_reasons_and_logs_nothing(client, merchandiser, shop):
    client.force_login(merchandiser)

    response = client.get("/dashboard/customers/C2/")
    html = response.content.decode()

    assert RecommendationLog.objects.count() == 0
    served = customer_recommendations(customer=Customer.objects.get(external_id="C2"), k=10)
    final = section(html, "final-list")
    assert re.findall(r'data-product="([^"]+)"', final) == [
        i.product.external_id for i in served.items
    ]
    assert re.findall(r'<li class="reason">([^<]+)</li>', final) == [
        r.replace("'", "&#x27;") for i in served.items for r in i.reasons
    ]
    assert f"engine build #{shop.pk}, configuration v1" in final


def test_inspector_shows_candidates_per_source_and_interests(client, merchandiser, shop):
    client.force_login(merchandiser)

    response = client.get("/dashboard/customers/C2/")
    html = response.content.decode()

    candidates = section(html, "candidates")
    assert re.findall(r'data-source="([^"]+)"', candidates) == [
        "semantic",
        "trending",
        "popularity",
    ]
    interests = section(html, "interests")
    # C2 bought the three inks on the same day: equal weights, by id order.
    assert re.findall(r'href="/dashboard/products/([^/"]+)/"', interests) == [
        "INK-1",
        "INK-2",
        "INK-3",
    ]
    assert '<span class="badge accent">Office 1.85</span>' in interests
    assert "Never recommended (already bought)" in interests
    assert chart(response, "chart-final-scores")["data"][0]["orientation"] == "h"


def test_inspector_shows_the_rules_that_fired(client, merchandiser, shop):
    from recommender.services.merchandising import (
        merchandising_rule_create,
        merchandising_rules_cache_reset,
    )

    merchandising_rules_cache_reset()
    pin = merchandising_rule_create(
        data={
            "name": "coffee first",
            "action": "pin",
            "target_kind": "product",
            "target_values": ["COF-1"],
            "position": 1,
        }
    )
    client.force_login(merchandiser)

    html = client.get("/dashboard/customers/C2/").content.decode()
    merchandising_rules_cache_reset()

    final = section(html, "final-list")
    assert re.findall(r'data-product="([^"]+)"', final)[0] == "COF-1"
    fired = section(html, "rules-fired")
    assert re.findall(r'<tr class="fired" data-product="([^"]+)"><td>(\d+)</td>', fired) == [
        ("COF-1", "1")
    ]
    assert f'<a href="/dashboard/rules/{pin.pk}/edit/">rule #{pin.pk}</a>' in fired


def test_inspector_timeline_is_paginated_newest_first(client, merchandiser, shop):
    customer = Customer.objects.get(external_id="C8")
    for n in range(30):
        add_event(customer, "MUG-1", event_type="view", at=T0 + timedelta(days=30, minutes=n))
    client.force_login(merchandiser)

    first = section(client.get("/dashboard/customers/C8/").content.decode(), "timeline")
    second = section(
        client.get("/dashboard/customers/C8/", {"events": 2}).content.decode(), "timeline"
    )

    assert first.count('<tr class="event">') == 25
    assert second.count('<tr class="event">') == 6  # 5 views and the first purchase
    first_when = re.findall(r'<td class="nowrap">([^<]+)</td>', first)[0]
    assert first_when == (T0 + timedelta(days=30, minutes=29)).strftime("%Y-%m-%d %H:%M")
    assert 'href="?events=1"' in second


def test_inspector_without_an_engine_says_so(client, merchandiser, fresh_serving):
    Customer.objects.create(external_id="C1")
    client.force_login(merchandiser)

    response = client.get("/dashboard/customers/C1/")
    html = response.content.decode()

    assert response.status_code == 200
    assert (
        '<p class="message warning" id="engine-not-ready">No recommendation engine has been '
        "fitted yet: run `manage.py train` or POST /api/v1/jobs/train.</p>"
    ) in html


def test_an_unknown_customer_is_404(client, merchandiser, shop):
    client.force_login(merchandiser)

    assert client.get("/dashboard/customers/NOPE/").status_code == 404


# Jobs -----------------------------------------------------------------------------------------


def test_admin_starts_a_reindex_and_watches_it(
    client, admin_user, shop, django_capture_on_commit_callbacks
):
    client.force_login(admin_user)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/dashboard/jobs/", {"kind": "reindex"})

    job = Job.objects.get()
    assert job.kind == JobKind.REINDEX
    assert job.state == JobState.SUCCEEDED
    assert job.triggered_by == admin_user
    assert response.status_code == 302
    assert response["Location"] == f"/dashboard/jobs/?job={job.pk}"
    page = client.get(response["Location"]).content.decode()
    assert f"Reindex (embed + build index) started as job #{job.pk}." in page
    assert f'data-poll-url="/api/v1/jobs/{job.pk}/"' in page
    assert 'data-fragment-url="/dashboard/jobs/history/"' in page
    history = client.get("/dashboard/jobs/history/").content.decode()
    assert f'<tr data-job="{job.pk}">' in history
    assert '<span class="badge succeeded">Succeeded</span>' in history
    assert "100%" in history


def test_admin_starts_a_fit(client, admin_user, shop, django_capture_on_commit_callbacks):
    client.force_login(admin_user)

    with django_capture_on_commit_callbacks(execute=True):
        client.post("/dashboard/jobs/", {"kind": "train"})

    job = Job.objects.get()
    assert (job.kind, job.state) == (JobKind.TRAIN, JobState.SUCCEEDED)


def test_an_unknown_job_kind_is_refused_and_nothing_starts(client, admin_user):
    client.force_login(admin_user)

    response = client.post("/dashboard/jobs/", {"kind": "explode"})

    assert response.status_code == 200
    assert (
        '<ul class="errorlist" id="id_kind_error"><li>Select a valid choice. explode is not one '
        "of the available choices.</li></ul>"
    ) in response.content.decode()
    assert Job.objects.count() == 0


def test_job_history_shows_durations_counts_and_errors(client, admin_user):
    started = T0
    Job.objects.create(
        kind=JobKind.REINDEX,
        state=JobState.FAILED,
        progress=40.0,
        counts={"embed": {"embedded": 12}, "build": {"items": 3}},
        error="RuntimeError: disk full",
        started_at=started,
        finished_at=started + timedelta(seconds=90),
    )
    client.force_login(admin_user)

    html = client.get("/dashboard/jobs/history/").content.decode()

    assert '<span class="badge failed">Failed</span>' in html
    assert '<td class="num">90.0 s</td>' in html
    assert "build items: 3, embed embedded: 12" in html
    assert "RuntimeError: disk full" in html
    assert '<td class="num">40%</td>' in html
    assert '<td class="by">system</td>' in html


def test_job_history_says_who_started_a_job_and_why_the_schedule_did(client, admin_user):
    Job.objects.create(kind=JobKind.TRAIN, triggered_by=admin_user)
    Job.objects.create(
        kind=JobKind.TRAIN,
        params={"source": "schedule", "reasons": ["2 events received since engine build 7"]},
    )
    client.force_login(admin_user)

    html = client.get("/dashboard/jobs/history/").content.decode()

    cells = re.findall(r'<td class="by">(.*?)</td>', html, re.S)
    assert cells == [
        'schedule<div class="muted small">2 events received since engine build 7</div>',
        admin_user.get_username(),
    ]


def test_a_long_brand_list_becomes_a_checked_text_field(client, merchandiser, db, monkeypatch):
    # given: more brands than the page offers as a list
    from recommender.models import Product
    from recommender.selectors import dashboard as dashboard_selectors

    monkeypatch.setattr(dashboard_selectors, "FILTER_CHOICES_LIMIT", 1)
    Product.objects.create(external_id="A", title="Mug", brand="Acme", category="kitchen")
    Product.objects.create(external_id="B", title="Pot", brand="Bolt", category="kitchen")
    client.force_login(merchandiser)
    # when
    listed = client.get("/dashboard/products/")
    known = client.get("/dashboard/products/", {"brand": "Bolt"})
    unknown = client.get("/dashboard/products/", {"brand": "Nope"})
    # then: a text input, not a list of brands; a known brand filters, an unknown one is refused
    assert '<input type="text" name="brand"' in listed.content.decode()
    assert '<select name="category"' in listed.content.decode()
    assert [p.external_id for p in known.context["page"]] == ["B"]
    assert known.context["form"].is_valid()
    assert unknown.context["page"] is None
    assert unknown.context["form"].errors["brand"] == ["No product has the brand 'Nope'."]
