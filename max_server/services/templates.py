"""WhatsApp message templates: submit for review, list, delete, and send one in a conversation.

Calls to Meta never happen inside a database transaction: create and delete read what they
need, call the Graph API, then write in a short transaction of their own. Status, quality and
category updates and the periodic sync live in ``template_updates``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, NoReturn

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, select

from max_server import clock
from max_server.access import Actor
from max_server.channels.whatsapp.graph import GraphClient, GraphError, GraphUnreachable, template_body
from max_server.db import Database
from max_server.domain import template_rules as rules
from max_server.errors import Conflict, Forbidden, NotFound, Unavailable, Unprocessable
from max_server.models import ChannelAccount, Message, User, WhatsAppTemplate
from max_server.schemas import Ref, TemplateCreate, TemplateCreated, TemplatePublic, TemplateSend
from max_server.services import audit, replies
from max_server.services.conversations import get_visible
from max_server.services.pagination import clamp_limit
from max_server.settings import Settings

log = logging.getLogger("max.templates")


# Presenting ------------------------------------------------------------------------------------
def present(session: Session, rows: Sequence[WhatsAppTemplate]) -> list[TemplatePublic]:
    creators = {r.created_by_id for r in rows if r.created_by_id is not None}
    users = (
        {u.id: u for u in session.exec(select(User).where(col(User.id).in_(creators)))} if creators else {}
    )
    out = []
    for row in rows:
        creator = users.get(row.created_by_id) if row.created_by_id is not None else None
        body = rules.body_text(row.components)
        out.append(
            TemplatePublic.model_validate(
                {
                    **row.model_dump(),
                    "body": body,
                    "parameter_count": rules.variable_count(body),
                    "header_parameter_count": rules.variable_count(rules.header_text(row.components)),
                    "created_by": Ref(id=creator.id, name=creator.name) if creator else None,
                }
            )
        )
    return out


def present_one(session: Session, row: WhatsAppTemplate) -> TemplatePublic:
    return present(session, [row])[0]


# Accounts and Meta -----------------------------------------------------------------------------
def graph(settings: Settings) -> GraphClient:
    from max_server.channels.whatsapp.send import graph_client

    return graph_client(settings)


def waba_of(account: ChannelAccount, settings: Settings) -> str | None:
    """The account's WhatsApp Business Account id (the configured one for the configured number)."""
    if account.waba_id:
        return account.waba_id
    if account.external_id == settings.whatsapp.phone_number_id and settings.whatsapp.waba_id:
        return settings.whatsapp.waba_id
    return None


def whatsapp_accounts(session: Session, settings: Settings) -> list[tuple[ChannelAccount, str]]:
    """Active WhatsApp accounts that have a WABA id, with it."""
    rows = session.exec(
        select(ChannelAccount)
        .where(ChannelAccount.kind == "whatsapp", col(ChannelAccount.is_active).is_(True))
        .order_by(col(ChannelAccount.id))
    )
    return [(row, waba) for row in rows if (waba := waba_of(row, settings))]


def resolve_account(session: Session, settings: Settings, ref: str | None) -> tuple[ChannelAccount, str]:
    if ref:
        from max_server.services.channels import find_account

        account = find_account(session, ref)
        waba = waba_of(account, settings) if account.kind == "whatsapp" else None
        if waba is None:
            raise Unprocessable(
                f"channel {ref} is not a WhatsApp number with a WABA id", code="whatsapp_not_configured"
            )
        return account, waba
    found = whatsapp_accounts(session, settings)
    if not found:
        raise Unprocessable(
            "no WhatsApp number with a WABA id: set whatsapp.waba_id or add a channel with --waba-id",
            code="whatsapp_not_configured",
        )
    return found[0]


def refused(exc: GraphError | GraphUnreachable, doing: str) -> NoReturn:
    """Meta's refusal becomes 422 with Meta's reason; no answer or a 5xx becomes 503."""
    if isinstance(exc, GraphUnreachable):
        maybe = (
            " (it may have reached WhatsApp: `max templates sync` shows it if so)" if exc.ambiguous else ""
        )
        raise Unavailable(f"WhatsApp could not be reached while {doing}{maybe}", code="whatsapp_unavailable")
    if exc.retryable:
        raise Unavailable(
            f"WhatsApp is unavailable ({exc.message}); try again later", code="whatsapp_unavailable"
        )
    reason = f"{exc.message}: {exc.details}" if exc.details else exc.message
    raise Unprocessable(
        f"WhatsApp refused {doing}: {reason}",
        code="whatsapp_refused",
        details={
            "meta_code": exc.code,
            "meta_subcode": exc.subcode,
            "meta_message": exc.message,
            "meta_details": exc.details,
            "fbtrace_id": exc.fbtrace_id,
        },
    )


def _admin(actor: Actor) -> None:
    if not actor.is_admin:
        raise Forbidden("only admins manage templates", code="insufficient_role")


# Create ----------------------------------------------------------------------------------------
def create(db: Database, settings: Settings, actor: Actor, body: TemplateCreate) -> TemplateCreated:
    """Checks the template, submits it to Meta, stores it as Meta answered (normally PENDING)."""
    _admin(actor)
    problems = rules.validate(body.name, body.language, body.category, body.components)
    if problems:
        first = problems[0]
        raise Unprocessable(
            f"{first.field}: {first.message}",
            code="invalid_template",
            details=[p.as_dict() for p in problems],
        )
    components = rules.normalise(body.components)
    category = body.category.upper()
    with db.session(write=False) as session:
        account, waba = resolve_account(session, settings, body.channel)
        if _find(session, account.id, body.name, body.language) is not None:  # type: ignore[arg-type]
            raise Conflict(
                f"template {body.name} ({body.language}) exists already; delete it first to submit it again",
                code="template_exists",
            )
    submitted = {
        "name": body.name,
        "language": body.language,
        "category": category,
        "parameter_format": "positional",
        "components": components,
    }
    try:
        answer = graph(settings).create_template(waba, submitted)
    except (GraphError, GraphUnreachable) as exc:
        log.info("template %s (%s) refused: %s", body.name, body.language, exc)
        refused(exc, "the template")
    values: dict[str, Any] = {
        "category": str(answer.get("category") or category).upper(),
        "components": components,
        "parameter_format": "positional",
        "status": str(answer.get("status") or "PENDING").upper(),
        "whatsapp_template_id": str(answer["id"]) if answer.get("id") is not None else None,
        "rejection_reason": None,
        "created_by_id": actor.user_id,
    }
    for attempt in range(2):  # a sync may have stored Meta's copy meanwhile: then update that row
        with db.session() as session:
            row = _find(session, account.id, body.name, body.language)  # type: ignore[arg-type]
            now = clock.now()
            if row is None:
                row = WhatsAppTemplate(
                    channel_account_id=account.id,  # type: ignore[arg-type]
                    name=body.name,
                    language=body.language,
                    created_at=now,
                    updated_at=now,
                    **values,
                )
            else:
                for key, value in values.items():
                    setattr(row, key, value)
                row.updated_at = now
            session.add(row)
            try:
                session.flush()
            except IntegrityError:
                session.rollback()
                if attempt:
                    raise
                continue
            audit.record(
                session,
                actor,
                "template.created",
                "whatsapp_template",
                row.id,
                {"name": body.name, "language": body.language, "status": row.status},
            )
            session.commit()
            return TemplateCreated.model_validate(present_one(session, row).model_dump())
    raise AssertionError("unreachable")


def _find(session: Session, account_id: int, name: str, language: str) -> WhatsAppTemplate | None:
    return session.exec(
        select(WhatsAppTemplate).where(
            WhatsAppTemplate.channel_account_id == account_id,
            WhatsAppTemplate.name == name,
            WhatsAppTemplate.language == language,
        )
    ).first()


# Read ------------------------------------------------------------------------------------------
def list_templates(
    session: Session,
    *,
    status: str | None = None,
    language: str | None = None,
    name: str | None = None,
    channel_account_id: int | None = None,
    after_id: int | None = None,
    limit: int | None = None,
) -> tuple[list[WhatsAppTemplate], int | None]:
    """By name, then language (id order for the cursor)."""
    size = clamp_limit(limit)
    query = select(WhatsAppTemplate)
    if status:
        query = query.where(WhatsAppTemplate.status == status.upper())
    if language:
        query = query.where(WhatsAppTemplate.language == language)
    if name:
        query = query.where(WhatsAppTemplate.name == name)
    if channel_account_id is not None:
        query = query.where(WhatsAppTemplate.channel_account_id == channel_account_id)
    if after_id is not None:
        query = query.where(col(WhatsAppTemplate.id) > after_id)
    rows = list(session.exec(query.order_by(col(WhatsAppTemplate.id)).limit(size + 1)))
    more = len(rows) > size
    rows = rows[:size]
    return rows, (rows[-1].id if more and rows else None)


def get(session: Session, template_id: int) -> WhatsAppTemplate:
    row = session.get(WhatsAppTemplate, template_id)
    if row is None:
        raise NotFound(f"template {template_id} not found", code="template_not_found")
    return row


# Delete ----------------------------------------------------------------------------------------
def delete_templates(
    db: Database,
    settings: Settings,
    actor: Actor,
    *,
    template_id: int | None = None,
    name: str | None = None,
    language: str | None = None,
    channel: str | None = None,
) -> list[TemplatePublic]:
    """One template (by id, or name and language), or every language of a name; at Meta first."""
    _admin(actor)
    with db.session(write=False) as session:
        if template_id is not None:
            rows = [get(session, template_id)]
            account = session.get(ChannelAccount, rows[0].channel_account_id)
            assert account is not None
            waba = waba_of(account, settings)
        elif name:
            account, waba = resolve_account(session, settings, channel)
            query = select(WhatsAppTemplate).where(
                WhatsAppTemplate.channel_account_id == account.id, WhatsAppTemplate.name == name
            )
            if language:
                query = query.where(WhatsAppTemplate.language == language)
            rows = list(session.exec(query.order_by(col(WhatsAppTemplate.id))))
        else:
            raise Unprocessable("give a template id, or a name", code="template_not_named")
        if not rows:
            which = f"{name} ({language})" if language else str(name)
            raise NotFound(f"template {which} not found", code="template_not_found")
        shown = present(session, rows)
    one_language = template_id is not None or language is not None
    if waba is not None:
        client = graph(settings)
        try:
            if one_language:
                for row in rows:
                    if row.whatsapp_template_id:  # never by name alone: that deletes every language
                        _delete_at_meta(client, waba, row.name, row.whatsapp_template_id)
            else:
                _delete_at_meta(client, waba, rows[0].name, None)
        except (GraphError, GraphUnreachable) as exc:
            refused(exc, "the deletion")
    with db.session() as session:
        ids = [r.id for r in rows]
        session.exec(delete(WhatsAppTemplate).where(col(WhatsAppTemplate.id).in_(ids)))
        audit.record(
            session,
            actor,
            "template.deleted",
            "whatsapp_template",
            ids[0] if len(ids) == 1 else None,
            {"name": rows[0].name, "languages": [r.language for r in rows]},
        )
        session.commit()
    return shown


def _delete_at_meta(client: GraphClient, waba: str, name: str, hsm_id: str | None) -> None:
    try:
        client.delete_template(waba, name, hsm_id=hsm_id)
    except GraphError as exc:
        text = f"{exc.message} {exc.details or ''}".lower()
        if exc.status < 500 and "not found" in text:
            return  # gone at Meta already (deleted in its UI): forget it here too
        raise


# Send ------------------------------------------------------------------------------------------
def send(session: Session, actor: Actor, conversation_id: int, raw: dict[str, Any]) -> Message:
    """Queues an approved template in a WhatsApp conversation; allowed outside the 24 h window.
    The stored message's text is the rendered body."""
    try:
        spec = TemplateSend.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "template"
        raise Unprocessable(
            f"template.{where}: {first['msg']}",
            code="invalid_template_message",
            details=[{"loc": e["loc"], "msg": e["msg"]} for e in exc.errors()],
        ) from None
    conversation = get_visible(session, actor, conversation_id, lock=True)
    replies.check_can_reply(actor, conversation)
    account = session.get(ChannelAccount, conversation.channel_account_id)
    assert account is not None
    if account.kind != "whatsapp":
        raise Unprocessable(
            "templates are sent on WhatsApp conversations only", code="templates_whatsapp_only"
        )
    template = _find(session, account.id, spec.name, spec.language)  # type: ignore[arg-type]
    if template is None:
        raise NotFound(
            f"no template {spec.name} ({spec.language}) on this WhatsApp number", code="template_not_found"
        )
    if template.status != "APPROVED":
        raise Conflict(
            f"template {spec.name} ({spec.language}) is {template.status}: "
            "only approved templates can be sent",
            code="template_not_approved",
            details={"status": template.status, "rejection_reason": template.rejection_reason},
        )
    body = rules.body_text(template.components)
    named = template.parameter_format.lower() == "named"
    problems = []
    if named != isinstance(spec.parameters, dict):
        form = "named parameters (an object)" if named else "positional parameters (a list)"
        problems.append(rules.Problem("parameters", f"this template takes {form}"))
    else:
        problems += rules.check_parameters(body, spec.parameters, "parameters")
        header = rules.header_text(template.components)
        problems += rules.check_parameters(header, spec.header_parameters, "header_parameters")
    if problems:
        raise Unprocessable(
            f"{problems[0].field}: {problems[0].message}",
            code="template_parameters_mismatch",
            details=[p.as_dict() for p in problems],
        )
    graph_body = template_body(
        "",
        template.name,
        template.language,
        spec.parameters,
        header_parameters=spec.header_parameters or None,
    )
    payload: dict[str, object] = {
        "graph_body": graph_body,
        "template": {
            "id": str(template.id),
            "name": template.name,
            "language": template.language,
            "parameters": spec.parameters,
            "header_parameters": spec.header_parameters,
        },
    }
    return replies.queue_outbound(
        session,
        actor,
        conversation,
        account,
        text=rules.render(body, spec.parameters),
        type_="template",
        payload=payload,
    )
