"""The template lifecycle against the Graph API sandbox, over HTTP both ways: create → PENDING →
Meta's signed status webhook → APPROVED → sendable outside the 24 h window; REJECTED with its
reason; one name in two languages stays two templates; what Meta never sees."""

from __future__ import annotations

from typing import Any

from sqlmodel import col, select

from max_server.channels.whatsapp import payloads
from max_server.channels.whatsapp.sandbox import Sandbox
from max_server.clock import FrozenClock
from max_server.db import Database
from max_server.jobs.worker import Worker
from max_server.models import Event, InboundEvent, Job, Message, WhatsAppTemplate
from tests.channels.conftest import WhatsApp
from tests.conftest import People, bearer
from tests.support.live import LiveServer
from tests.templates.conftest import Api, order_shipped

WA = "5215512345678"
TEMPLATES = "/api/v1/whatsapp-templates"


def template_posts(sandbox: Sandbox) -> list[Any]:
    return [r for r in sandbox.requests if r.method == "POST" and r.path.endswith("/message_templates")]


def create(api: Api, body: dict[str, Any]) -> dict[str, Any]:
    response = api.post(TEMPLATES, json=body)
    assert response.status_code == 201, response.text
    return response.json()


def test_create_pending_then_approved_by_signed_webhook_then_sent_outside_the_window(
    live: LiveServer,
    as_admin: Api,
    admin: tuple[Any, str],
    sandbox: Sandbox,
    whatsapp: WhatsApp,
    worker: Worker,
    clock: FrozenClock,
    db: Database,
) -> None:
    created = create(as_admin, order_shipped())
    assert created["status"] == "PENDING"
    assert created["message"] == "Template submitted to WhatsApp for approval"
    assert (created["name"], created["language"], created["parameter_count"]) == ("order_shipped", "es", 3)
    [submitted] = template_posts(sandbox)
    assert submitted.json == {
        "name": "order_shipped",
        "language": "es",
        "category": "UTILITY",
        "parameter_format": "positional",
        "components": order_shipped()["components"],
    }
    meta_id = created["whatsapp_template_id"]
    assert meta_id and [t["status"] for t in sandbox.templates()] == ["PENDING"]

    # A customer wrote 25 hours ago: free text is refused, the template is not approved yet.
    whatsapp.text("¿y mi pedido?", wa_id=WA, ts=clock.now().timestamp())
    [conversation] = as_admin.get("/api/v1/conversations").json()["conversations"]
    clock.advance(hours=25)
    messages = f"/api/v1/conversations/{conversation['id']}/messages"
    send = {
        "template": {"name": "order_shipped", "language": "es", "parameters": ["Juan", "A-1001", "1Z999"]}
    }
    assert as_admin.post(messages, json={"text": "hola"}).json()["error"]["code"] == "whatsapp_window_closed"
    early = as_admin.post(messages, json=send)
    assert (early.status_code, early.json()["error"]["code"]) == (409, "template_not_approved")

    answer = sandbox.template_status(live.url, "APPROVED", meta_id, "order_shipped", "es", category="UTILITY")
    assert answer.status_code == 200, answer.text
    approved = as_admin.get(f"{TEMPLATES}/{created['id']}").json()
    assert (approved["status"], approved["rejection_reason"]) == ("APPROVED", None)
    notes = as_admin.get("/api/v1/notifications").json()["notifications"]
    assert [(n["kind"], n["text"]) for n in notes] == [
        ("template.status_updated", "Template 'order_shipped' (es) approved")
    ]
    with db.session(write=False) as session:
        [event] = session.exec(select(Event).where(Event.type == "template.status_updated")).all()
    assert (event.data["status"], event.data["previous_status"], event.data["change"]) == (
        "APPROVED",
        "PENDING",
        "status",
    )
    assert event.audience["users"] == [admin[0].id]

    wrong_count = as_admin.post(messages, json={"template": {**send["template"], "parameters": ["Juan"]}})
    assert (wrong_count.status_code, wrong_count.json()["error"]["code"]) == (
        422,
        "template_parameters_mismatch",
    )
    sent = as_admin.post(messages, json=send)
    assert sent.status_code == 201, sent.text
    message = sent.json()
    assert (message["type"], message["delivery_status"]) == ("template", "pending")
    assert message["content_text"] == "Hola Juan, tu pedido A-1001 ha sido enviado. Tracking: 1Z999"
    assert worker.drain() == 1
    [body] = sandbox.sent_messages(accepted_only=True)
    assert body == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "+" + WA,
        "type": "template",
        "template": {
            "name": "order_shipped",
            "language": {"code": "es"},
            "components": [
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "text": "Juan"},
                        {"type": "text", "text": "A-1001"},
                        {"type": "text", "text": "1Z999"},
                    ],
                }
            ],
        },
        "biz_opaque_callback_data": f"max:{message['id']}",  # echoed in statuses (services.statuses)
    }
    with db.session(write=False) as session:
        stored = session.get(Message, int(message["id"]))
        assert stored is not None and stored.delivery_status == "sent"


def test_rejected_shows_meta_s_reason_and_cannot_be_sent(
    live: LiveServer, as_admin: Api, sandbox: Sandbox, whatsapp: WhatsApp, clock: FrozenClock
) -> None:
    created = create(as_admin, order_shipped("en", category="MARKETING"))
    sandbox.template_status(
        live.url,
        "REJECTED",
        created["whatsapp_template_id"],
        "order_shipped",
        "en",
        reason="INVALID_FORMAT",
        rejection_info={
            "reason": "Variables are misplaced",
            "recommendation": "Move {{1}} inside a sentence",
        },
    )
    rejected = as_admin.get(f"{TEMPLATES}/{created['id']}").json()
    assert rejected["status"] == "REJECTED"
    assert rejected["rejection_reason"] == (
        "INVALID_FORMAT; Variables are misplaced; Move {{1}} inside a sentence"
    )
    whatsapp.text("hi", wa_id=WA, ts=clock.now().timestamp())
    [conversation] = as_admin.get("/api/v1/conversations").json()["conversations"]
    refused = as_admin.post(
        f"/api/v1/conversations/{conversation['id']}/messages",
        json={"template": {"name": "order_shipped", "language": "en", "parameters": ["a", "b", "c"]}},
    )
    assert refused.status_code == 409
    assert refused.json()["error"]["details"]["rejection_reason"].startswith("INVALID_FORMAT")
    # Every value Meta sends is kept: a paused template says why; approval clears the reason.
    sandbox.template_status(
        live.url,
        "PAUSED",
        created["whatsapp_template_id"],
        "order_shipped",
        "en",
        other_info={"title": "FIRST_PAUSE", "description": "Low quality: paused for 3 hours"},
    )
    paused = as_admin.get(f"{TEMPLATES}/{created['id']}").json()
    assert (paused["status"], paused["rejection_reason"]) == (
        "PAUSED",
        "FIRST_PAUSE: Low quality: paused for 3 hours",
    )
    sandbox.template_status(live.url, "APPROVED", created["whatsapp_template_id"], "order_shipped", "en")
    assert as_admin.get(f"{TEMPLATES}/{created['id']}").json()["rejection_reason"] is None


def test_one_name_in_two_languages_stays_two_templates(
    live: LiveServer, as_admin: Api, sandbox: Sandbox, db: Database
) -> None:
    es = create(as_admin, order_shipped("es"))
    en = create(as_admin, order_shipped("en"))
    assert es["id"] != en["id"] and es["whatsapp_template_id"] != en["whatsapp_template_id"]
    sandbox.template_status(live.url, "APPROVED", es["whatsapp_template_id"], "order_shipped", "es")
    listed = as_admin.get(TEMPLATES).json()["templates"]
    assert {(t["language"], t["status"]) for t in listed} == {("es", "APPROVED"), ("en", "PENDING")}
    # An id Meta never gave us: matched by name AND language, never by name alone.
    sandbox.template_status(live.url, "REJECTED", 424242, "order_shipped", "en", reason="PROMOTIONAL")
    statuses = {t["language"]: t["status"] for t in as_admin.get(TEMPLATES).json()["templates"]}
    assert statuses == {"es": "APPROVED", "en": "REJECTED"}
    sandbox.template_status(live.url, "DISABLED", 777, "order_shipped", "pt_BR")
    statuses = {t["language"]: t["status"] for t in as_admin.get(TEMPLATES).json()["templates"]}
    assert statuses == {"es": "APPROVED", "en": "REJECTED"}
    with db.session(write=False) as session:  # kept, and a sync is queued to learn about it
        kinds = [e.kind for e in session.exec(select(InboundEvent))]
        syncs = session.exec(select(Job).where(Job.kind == "templates.sync")).all()
    assert kinds == ["message_template_status_update"] and len(syncs) == 1
    filtered = as_admin.get(TEMPLATES, params={"status": "approved", "language": "es"}).json()["templates"]
    assert [(t["name"], t["language"]) for t in filtered] == [("order_shipped", "es")]


def test_an_invalid_template_never_reaches_meta(
    as_admin: Api, sandbox: Sandbox, people: People, live: LiveServer
) -> None:
    for bad in (
        order_shipped(name="Order-Shipped"),
        order_shipped(category="PROMO"),
        order_shipped(
            components=[{"type": "BODY", "text": "Hola {{1}} {{3}}", "example": {"body_text": [["a", "b"]]}}]
        ),
        order_shipped(components=[{"type": "BODY", "text": "Hola {{1}}"}]),
        order_shipped(components=[{"type": "BODY", "text": "x" * 1025}]),
    ):
        refused = as_admin.post(TEMPLATES, json=bad)
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["code"] == "invalid_template"
    assert template_posts(sandbox) == []
    _, agent = people.user("agent")
    forbidden = as_admin.http.post(live.url + TEMPLATES, json=order_shipped(), headers=bearer(agent))
    assert forbidden.status_code == 403
    assert template_posts(sandbox) == []
    assert as_admin.http.get(live.url + TEMPLATES, headers=bearer(agent)).status_code == 200


def test_meta_s_refusal_is_a_422_with_its_reason(as_admin: Api, sandbox: Sandbox) -> None:
    from max_server.channels.whatsapp.graph import GraphClient

    with GraphClient(sandbox.graph_url, "sandbox-token") as meta:  # made in Meta's UI meanwhile
        meta.create_template(sandbox.waba_id, order_shipped())
    refused = as_admin.post(TEMPLATES, json=order_shipped())
    assert refused.status_code == 422
    error = refused.json()["error"]
    assert error["code"] == "whatsapp_refused"
    assert "Content in this language already exists: order_shipped (es)" in error["message"]
    assert error["details"]["meta_code"] == 100
    assert as_admin.get(TEMPLATES).json()["templates"] == []


def test_quality_and_category_updates_are_stored_and_the_alias_path_works(
    live: LiveServer, as_admin: Api, sandbox: Sandbox
) -> None:
    created = create(as_admin, order_shipped())
    meta_id = int(created["whatsapp_template_id"])
    quality = payloads.template_quality_change(meta_id, "order_shipped", "es", "GREEN", "RED")
    envelope = payloads.envelope(sandbox.phone_number_id, [quality], sandbox.waba_id)
    assert (
        sandbox.post_webhook(live.url, envelope, path="/webhooks/whatsapp/template-status").status_code == 200
    )
    category = payloads.template_category_change(meta_id, "order_shipped", "es", "MARKETING", "UTILITY")
    sandbox.post_webhook(live.url, payloads.envelope(sandbox.phone_number_id, [category], sandbox.waba_id))
    found = as_admin.get(f"{TEMPLATES}/{created['id']}").json()
    assert (found["quality"], found["category"], found["status"]) == ("RED", "MARKETING", "PENDING")


def test_delete_one_language_or_all(as_admin: Api, sandbox: Sandbox, db: Database) -> None:
    es = create(as_admin, order_shipped("es"))
    create(as_admin, order_shipped("en"))
    create(as_admin, order_shipped("pt_BR"))
    gone = as_admin.delete(f"{TEMPLATES}/{es['id']}")
    assert [(t["name"], t["language"]) for t in gone.json()["deleted"]] == [("order_shipped", "es")]
    assert sorted(t["language"] for t in sandbox.templates()) == ["en", "pt_BR"]
    one = as_admin.delete(TEMPLATES, params={"name": "order_shipped", "language": "en"})
    assert [t["language"] for t in one.json()["deleted"]] == ["en"]
    deletes = [r.query for r in sandbox.requests if r.method == "DELETE"]
    assert all("hsm_id" in q for q in deletes)  # one language: never by name alone
    assert [t["language"] for t in sandbox.templates()] == ["pt_BR"]
    rest = as_admin.delete(TEMPLATES, params={"name": "order_shipped"})
    assert [t["language"] for t in rest.json()["deleted"]] == ["pt_BR"]
    assert sandbox.templates() == []
    with db.session(write=False) as session:
        assert session.exec(select(WhatsAppTemplate)).all() == []
    assert as_admin.delete(TEMPLATES, params={"name": "order_shipped"}).status_code == 404


def test_sync_adds_templates_made_in_meta_s_ui_and_follows_them(
    as_admin: Api, sandbox: Sandbox, worker: Worker, db: Database
) -> None:
    from max_server.channels.whatsapp.graph import GraphClient
    from max_server.jobs import queue, registry

    assert any(t.name == "templates.sync" and t.interval == 900 for t in registry.periodic_tasks())
    mine = create(as_admin, order_shipped())
    with GraphClient(sandbox.graph_url, "sandbox-token") as meta:
        welcome = meta.create_template(sandbox.waba_id, order_shipped(name="welcome", language="en_US"))
    result = as_admin.post(f"{TEMPLATES}/sync").json()
    assert (result["added"], result["unchanged"], result["removed"]) == (1, 1, 0)
    listed = {(t["name"], t["language"]): t for t in as_admin.get(TEMPLATES).json()["templates"]}
    assert listed[("welcome", "en_US")]["whatsapp_template_id"] == welcome["id"]
    assert listed[("welcome", "en_US")]["created_by"] is None

    # The periodic job does the same: an approval and a deletion made at Meta.
    sandbox.template_store.set_status(welcome["id"], "APPROVED")
    with GraphClient(sandbox.graph_url, "sandbox-token") as meta:
        meta.delete_template(sandbox.waba_id, "order_shipped", hsm_id=mine["whatsapp_template_id"])
    with db.session() as session:
        queue.enqueue(session, "templates.sync", {"tick": 1})
        session.commit()
    assert worker.drain() == 1
    statuses = {t["name"]: t["status"] for t in as_admin.get(TEMPLATES).json()["templates"]}
    assert statuses == {"order_shipped": "DELETED", "welcome": "APPROVED"}
    with db.session(write=False) as session:
        jobs = session.exec(select(Job).where(Job.kind == "templates.sync")).all()
        changes = session.exec(
            select(Event).where(Event.type == "template.status_updated").order_by(col(Event.id))
        ).all()
    assert [j.state for j in jobs] == ["done"]
    assert [(e.data["name"], e.data["change"], e.data["status"]) for e in changes] == [
        ("welcome", "added", "PENDING"),
        ("welcome", "status", "APPROVED"),
        ("order_shipped", "status", "DELETED"),
    ]
