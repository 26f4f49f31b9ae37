"""The social source served: a customer's network read per request, reasons that count people
(names only when the shop enables them), social proof in the API, the inspector's panel, and
the Ciao importer and the evaluation with relationships."""

import io
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.core.management import call_command

from recommender.models import Customer, Event, Product
from recommender.services import recommendations as service
from recommender.services.recommendations import recommendation_config_save
from social.models import Relationship
from social.records import parse_relationship
from social.selectors import customer_network
from social.services import relationships_upsert
from tests.recommender.shop import SHOP_CONFIG, T0, fresh_serving, shop

__all__ = ["fresh_serving", "shop"]

CIAO = Path(__file__).resolve().parent / "data" / "ciao"


@pytest.fixture
def social_shop(shop):
    """The small shop with the social source on: NEW has no events, follows the two lamp buyers
    C6 and C7 and trusts C1 (an ink buyer); C6 is called Zed."""
    recommendation_config_save(
        config=SHOP_CONFIG.replace(source_weights={**SHOP_CONFIG.source_weights, "social": 1.0})
    )
    Customer.objects.create(external_id="NEW")
    Customer.objects.filter(external_id="C6").update(attributes={"name": "Zed"})
    rows = [("C6", "follows"), ("C7", "follows"), ("C1", "trusts")]
    relationships_upsert(
        records=[
            parse_relationship(
                {"customer_id": "NEW", "target_customer_id": target, "type": kind}, now=T0
            )
            for target, kind in rows
        ]
    )
    return Customer.objects.get(external_id="NEW")


@pytest.mark.django_db(transaction=True)
def test_the_network_is_read_bounded_with_each_members_events(social_shop):
    members = customer_network(customer_id=social_shop.pk, now=T0.timestamp() + 30 * 86_400)
    by_id = {m.customer_id: m for m in members}
    c6 = Customer.objects.get(external_id="C6")
    assert {m.hop for m in members} == {1}
    assert sorted(Product.objects.get(pk=p).external_id for p in by_id[c6.pk].product_ids) == [
        "LAMP-1", "LAMP-2"
    ]  # fmt: skip
    assert by_id[c6.pk].display_name == ""  # Names are off by default.
    assert len(members) == 3


@pytest.mark.django_db(transaction=True)
def test_a_customer_without_events_gets_what_their_network_bought(social_shop, settings):
    items = service.customer_recommendations(customer=social_shop, k=4, log=False).items
    top = {item.product.external_id: item for item in items[:2]}
    assert set(top) == {"LAMP-1", "LAMP-2"}
    for item in top.values():
        assert item.sources[0] == "social"
        assert "2 people you follow bought this" in item.reasons
    every_reason = " ".join(r for item in items for r in item.reasons)
    assert "Zed" not in every_reason
    assert "C6" not in every_reason
    assert "C7" not in every_reason
    inks = [item for item in items if item.product.external_id.startswith("INK")]
    assert inks
    assert all("1 person you trust bought this" in item.reasons for item in inks)

    settings.RECSITE_SOCIAL_REASON_NAMES = True
    named = service.customer_recommendations(customer=social_shop, k=2, log=False).items
    assert all("Zed and 1 other person you follow bought this" in i.reasons for i in named)


@pytest.mark.django_db(transaction=True)
def test_social_proof_is_an_optional_field_of_the_list(social_shop, read_client):
    url = "/api/v1/customers/NEW/recommendations?k=4"
    plain = read_client.get(url).json()["results"]
    assert all("social_proof" not in item for item in plain)
    proved = read_client.get(url + "&social_proof=true").json()["results"]
    counts = {item["product"]["product_id"]: item["social_proof"] for item in proved}
    expected = {"LAMP-1": 2, "LAMP-2": 2, "INK-1": 1, "INK-2": 1}
    assert counts == {pid: expected.get(pid, 0) for pid in counts}
    assert [i["product"]["product_id"] for i in proved] == [
        i["product"]["product_id"] for i in plain
    ]
    assert read_client.get(url + "&social_proof=maybe").status_code == 400


@pytest.mark.django_db(transaction=True)
def test_the_inspector_panel_lists_the_network_and_what_it_bought(social_shop, merchandiser_client):
    html = merchandiser_client.get("/dashboard/social/customers/NEW/network").content.decode()
    for text in ("C6", "C7", "C1", "follows", "trusts", "Glass hanging t-light lantern"):
        assert text in html
    lonely = merchandiser_client.get("/dashboard/social/customers/C8/network").content.decode()
    assert "No relationships" in lonely
    unknown = merchandiser_client.get("/dashboard/social/customers/NOPE/network")
    assert unknown.status_code == 200
    assert "Unknown customer" in unknown.content.decode()


@pytest.mark.django_db(transaction=True)
def test_the_inspector_page_links_the_network_panel(social_shop, merchandiser_client):
    page = merchandiser_client.get("/dashboard/customers/NEW/").content.decode()
    assert 'data-fragment-url="/dashboard/social/customers/NEW/network"' in page


# Files -----------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_import_relationships_reports_bad_rows_by_line_and_is_idempotent(tmp_path):
    path = tmp_path / "relationships.csv"
    path.write_text(
        "customer_id,target_customer_id,type,weight\n"
        "A,B,follows,\n"
        "A,A,follows,\n"
        "B,C,friend,2\n"
        "C,D,likes,1\n"
    )
    out, err = io.StringIO(), io.StringIO()
    call_command("import_relationships", str(path), no_progress=True, stdout=out, stderr=err)
    assert "line 3: target_customer_id: a customer cannot have a relationship with themself" in (
        err.getvalue()
    )
    assert "line 5: type: unknown type 'likes'" in err.getvalue()
    assert "relationships: 3 created, 0 updated, 0 unchanged" in out.getvalue()
    assert "rejected:      2 rows" in out.getvalue()
    again = io.StringIO()
    call_command("import_relationships", str(path), no_progress=True, stdout=again, stderr=err)
    assert "relationships: 0 created, 0 updated, 3 unchanged" in again.getvalue()
    assert Relationship.objects.count() == 3


@pytest.mark.django_db(transaction=True)
def test_import_ciao_then_evaluate_reports_the_social_models_and_segments(tmp_path, fresh_serving):
    out = io.StringIO()
    call_command("import_ciao", str(CIAO), no_progress=True, stdout=out, stderr=io.StringIO())
    assert "products:      840 created" in out.getvalue()
    assert "relationships: 142 created" in out.getvalue()
    assert Event.objects.filter(event_type="purchase").count() == 726  # Ratings 4 and 5.
    # One rating of 3 is in the file twice (same customer, product, day): one event.
    assert Event.objects.filter(event_type="click").count() == 105
    assert Event.objects.filter(event_type="view").count() == 58  # Ratings of 0 to 2.
    first = Product.objects.get(external_id="15030")
    assert (first.title, first.category[:9]) == ("Ciao product 15030", "category ")
    again = io.StringIO()
    call_command("import_ciao", str(CIAO), no_progress=True, stdout=again, stderr=io.StringIO())
    assert "events:        0 created" in again.getvalue()
    assert "relationships: 0 created, 0 updated, 142 unchanged" in again.getvalue()

    report_path = tmp_path / "report.json"
    call_command("evaluate", "--no-embed", "--k", "10", "--json", str(report_path),
                 stdout=io.StringIO(), stderr=io.StringIO())  # fmt: skip
    report = json.loads(report_path.read_text())["reports"][0]
    assert {"hybrid", "hybrid_without_social", "social_only"} <= set(report["models"])
    segments = report["segments"]
    assert set(segments) == {
        "with_relationships", "without_relationships", "few_events", "few_events_simulated"
    }  # fmt: skip
    assert segments["few_events_simulated"]["users"] == segments["with_relationships"]["users"]
    assert segments["with_relationships"]["users"] + segments["without_relationships"][
        "users"] == report["models"]["hybrid"]["users"]  # fmt: skip
    assert set(segments["with_relationships"]["models"]["hybrid"]) == {
        "recall@10", "ndcg@10", "mrr", "users"
    }  # fmt: skip


@pytest.mark.django_db(transaction=True)
def test_the_tuning_page_has_a_social_slider_and_its_settings(social_shop, merchandiser_client):
    html = merchandiser_client.get("/dashboard/tuning/").content.decode()
    assert re.search(r'name="w_social" value="1.0"[^>]*data-slider="0:3:0.05"', html) or re.search(
        r'data-slider="0:3:0.05"[^>]*name="w_social" value="1.0"', html
    )
    assert re.search(r'name="social_hop_decay" value="0.5"', html)
    assert re.search(r'name="social_half_life_days" value="180.0"', html)
    assert re.search(r'name="social_tie_floor" value="0.5"', html)


@pytest.mark.django_db
def test_a_shop_without_relationships_reads_no_network_until_one_is_written(settings):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from social import selectors

    settings.RECSITE_SOCIAL_EDGES_RECHECK_SECONDS = 60.0
    selectors._edges.forget()
    customer = Customer.objects.create(external_id="LONER")

    # The first read asks whether any edge exists; within the recheck time nothing is asked
    assert selectors.customer_network(customer_id=customer.pk, now=0.0) == ()
    with CaptureQueriesContext(connection) as queries:
        assert selectors.customer_network(customer_id=customer.pk, now=0.0) == ()
    assert len(queries) == 0

    # A write in this process ends it at once
    relationships_upsert(
        records=[parse_relationship(
            {"customer_id": "LONER", "target_customer_id": "FRIEND", "type": "follows"},
            now=datetime(2024, 6, 1, tzinfo=UTC),
        )]
    )  # fmt: skip
    assert selectors.relationships_exist()
    selectors._edges.forget()
