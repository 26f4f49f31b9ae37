"""The audit log: each change in the role x endpoint matrix is recorded with its actor, refused
requests record nothing, the log is append-only (ORM, admin and database), admins read it."""

import pytest
from django.db import DatabaseError, connection, transaction
from rest_framework.test import APIClient

from accounts.models import ApiToken
from accounts.services import api_token_create
from privacy.context import acting_as
from privacy.keys import customer_key
from privacy.models import AuditEntry, AuditLogAppendOnly, ForgetRequest
from recommender.ml.engine import EngineConfig
from recommender.models import MerchandisingRule, Product
from recommender.services.recommendations import recommendation_config_save
from tagging.models import ProductTag, Tag

pytestmark = pytest.mark.django_db

PIN = {
    "name": "Hero mug", "action": "pin", "target_kind": "product", "target_values": ["COF-1"],
    "position": 1,
}  # fmt: skip


def _client(principal, merchandiser, admin_user):
    client = APIClient()
    if principal == "admin":
        client.force_login(admin_user)
        return client, "user:boss"
    if principal == "merchandiser":
        client.force_login(merchandiser)
        return client, "user:merch"
    token, raw = api_token_create(name=f"shop-{principal}", scopes=[principal])
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client, f"token:{token.prefix} (shop-{principal})"


# What each principal may do: the status of each request, in order.
MATRIX = {
    #                rule  token  decide forget revoke
    "admin":        (201,  201,   200,   200,   200),
    "merchandiser": (201,  403,   200,   403,   403),
    "ingest":       (403,  403,   403,   200,   403),
    "read":         (403,  403,   403,   403,   403),
    "privacy":      (403,  403,   403,   403,   403),
}  # fmt: skip


@pytest.mark.parametrize("principal", list(MATRIX))
def test_every_change_in_the_role_by_endpoint_matrix_is_audited_with_its_actor(
    principal, shop, merchandiser, admin_user
):
    client, actor = _client(principal, merchandiser, admin_user)
    suggestion = ProductTag.objects.create(
        product=Product.objects.get(external_id="MUG-1"),
        tag=Tag.objects.create(name="mugs"),
        source="zero_shot",
        confidence=0.9,
    )
    victim, _ = api_token_create(name="old-shop", scopes=["read"])
    mark = AuditEntry.objects.order_by("-id").values_list("id", flat=True).first() or 0
    expected = MATRIX[principal]

    statuses = (
        client.post("/api/v1/rules/", PIN, format="json").status_code,
        client.post(
            "/api/v1/tokens/", {"name": "new", "scopes": ["read"]}, format="json"
        ).status_code,
        client.post(
            "/api/v1/tags/suggestions/decide",
            {"ids": [suggestion.pk], "decision": "accepted"},
            format="json",
        ).status_code,
        client.delete("/api/v1/customers/C8/").status_code,
        client.delete(f"/api/v1/tokens/{victim.pk}/").status_code,
    )

    assert statuses == expected
    entries = [
        (e.actor, e.action, e.target, e.detail)
        for e in AuditEntry.objects.filter(id__gt=mark).order_by("id")  # Not the set-up's.
    ]
    wanted = []
    if expected[0] == 201:
        rule = MerchandisingRule.objects.get()
        wanted.append((actor, "rule.create", f"rule:{rule.pk}", {"name": "Hero mug",
                                                               "active": True}))  # fmt: skip
    if expected[1] == 201:
        token = ApiToken.objects.get(name="new")
        wanted.append((actor, "token.create", f"token:{token.pk}",
                       {"name": "new", "scopes": ["read"]}))  # fmt: skip
    if expected[2] == 200:
        wanted.append((actor, "http.post", "tagging-api:suggestion-decide", {
            "path_args": {}, "status": 200,
            "fields": {"ids": [suggestion.pk], "decision": "accepted"},
        }))  # fmt: skip
    if expected[3] == 200:
        request = ForgetRequest.objects.get()
        wanted.append((actor, "customer.forget", f"forget-request:{request.pk}",
                       {"customer_key": customer_key("C8"), "events_deleted": 1}))  # fmt: skip
    if expected[4] == 200:
        wanted.append((actor, "token.revoke", f"token:{victim.pk}", {}))
    assert entries == wanted


def test_a_configuration_version_is_audited_with_the_command_that_made_it(shop):
    with acting_as("command:tune"):
        row = recommendation_config_save(config=EngineConfig(), note="blend retuned")
    entry = AuditEntry.objects.filter(action="config.version").latest("id")  # v1: the shop's.
    assert (entry.actor, entry.target, entry.detail) == (
        "command:tune", f"recommendation-config:{row.version}",
        {"note": "blend retuned", "active": True},
    )  # fmt: skip


def test_the_audit_log_is_append_only(admin_user):
    with acting_as("command:test"):
        from privacy.services.audit import audit_record

        entry = audit_record(action="test.action", target="thing:1")
    with pytest.raises(AuditLogAppendOnly):
        entry.save()
    with pytest.raises(AuditLogAppendOnly):
        entry.delete()
    with pytest.raises(AuditLogAppendOnly):
        AuditEntry.objects.filter(pk=entry.pk).update(action="forged")
    with pytest.raises(AuditLogAppendOnly):
        AuditEntry.objects.filter(pk=entry.pk).delete()
    # ... and in the database itself, for anything that goes round the ORM (SQLite refuses
    # updates only: Django's flush empties its tables with DELETE; privacy migration 0004)
    statements = ["UPDATE privacy_auditentry SET action = 'forged'"]
    if connection.vendor == "postgresql":
        statements.append("DELETE FROM privacy_auditentry")
    for sql in statements:
        with (
            pytest.raises(DatabaseError, match="the audit log is append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql)
    assert list(AuditEntry.objects.values_list("action", flat=True)) == ["test.action"]


def test_deleting_a_login_keeps_its_entries(admin_user, admin_client_api):
    admin_client_api.post("/api/v1/tokens/", {"name": "new", "scopes": ["read"]}, format="json")
    admin_user.delete()
    entry = AuditEntry.objects.get()
    assert (entry.actor, entry.user_id, entry.action) == ("user:boss", None, "token.create")


@pytest.mark.parametrize(
    ("who", "status"),
    [("admin", 200), ("merchandiser", 403), ("read", 403), ("privacy", 403), ("anon", 401)],
)
def test_admins_read_the_audit_log_and_the_forget_requests(who, status, merchandiser, admin_user):
    with acting_as("command:test"):
        from privacy.services.audit import audit_record

        first = audit_record(action="a.first")
        second = audit_record(action="a.second")
    client = APIClient() if who == "anon" else _client(who, merchandiser, admin_user)[0]

    response = client.get("/api/v1/privacy/audit")
    requests = client.get("/api/v1/privacy/forget-requests")

    assert (response.status_code, requests.status_code) == (status, status)
    if status == 200:
        body = response.json()
        assert [(e["id"], e["actor"], e["action"]) for e in body["results"]] == [
            (second.pk, "command:test", "a.second"), (first.pk, "command:test", "a.first"),
        ]  # fmt: skip
        filtered = client.get("/api/v1/privacy/audit", {"action": "a.first"}).json()["results"]
        assert [e["id"] for e in filtered] == [first.pk]
        assert requests.json()["results"] == []


def test_the_admin_pages_of_the_audit_log_are_read_only(admin_user, client):
    with acting_as("command:test"):
        from privacy.services.audit import audit_record

        entry = audit_record(action="a.first")
    client.force_login(admin_user)
    assert client.get("/admin/privacy/auditentry/").status_code == 200
    assert client.get("/admin/privacy/auditentry/add/").status_code == 403
    assert client.get(f"/admin/privacy/auditentry/{entry.pk}/delete/").status_code == 403
    page = client.get(f"/admin/privacy/auditentry/{entry.pk}/change/")
    assert page.status_code == 200
    assert b'name="_save"' not in page.content


def test_a_merchandiser_cannot_read_the_audit_log_in_the_admin(merchandiser, client):
    client.force_login(merchandiser)
    assert client.get("/admin/privacy/auditentry/").status_code == 403


def test_a_tag_decision_on_the_dashboard_is_audited_once_it_is_made(shop, merchandiser, client):
    suggestion = ProductTag.objects.create(
        product=Product.objects.get(external_id="MUG-1"),
        tag=Tag.objects.create(name="mugs"),
        source="zero_shot",
        confidence=0.9,
    )
    client.force_login(merchandiser)
    mark = AuditEntry.objects.order_by("-id").values_list("id", flat=True).first() or 0

    refused = client.post("/dashboard/tags/", {"decision": "accepted"})  # No suggestion ticked.
    made = client.post("/dashboard/tags/", {"ids": [suggestion.pk], "decision": "rejected"})

    assert (refused.status_code, made.status_code) == (200, 302)
    entries = [
        (e.actor, e.action, e.target, e.detail) for e in AuditEntry.objects.filter(id__gt=mark)
    ]
    assert entries == [
        ("user:merch", "http.post", "tagging-dashboard:review", {
            "path_args": {}, "status": 302,
            "fields": {"ids": str(suggestion.pk), "decision": "rejected"},
        }),
    ]  # fmt: skip
