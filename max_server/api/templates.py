"""WhatsApp message templates: admins submit, delete and sync them; agents read them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from starlette.concurrency import run_in_threadpool

from max_server.api.deps import AdminActor, AgentActor, DbDep, SessionDep, SettingsDep
from max_server.schemas import (
    TemplateCreate,
    TemplateCreated,
    TemplateDeleted,
    TemplateList,
    TemplatePublic,
    TemplateSyncResult,
)
from max_server.services import template_updates, templates
from max_server.services.pagination import cursor_int, encode_cursor

router = APIRouter(prefix="/api/v1/whatsapp-templates", tags=["templates"])


@router.post("", response_model=TemplateCreated, status_code=status.HTTP_201_CREATED)
async def create_template(
    db: DbDep, settings: SettingsDep, actor: AdminActor, body: TemplateCreate
) -> TemplateCreated:
    """Checks the template and submits it to WhatsApp for review (it starts PENDING). Meta's
    refusal answers 422 `whatsapp_refused` with Meta's reason."""
    return await run_in_threadpool(templates.create, db, settings, actor, body)


@router.get("", response_model=TemplateList)
def list_templates(
    session: SessionDep,
    actor: AgentActor,
    status: Annotated[str | None, Query(description="PENDING, APPROVED, REJECTED, PAUSED, …")] = None,
    language: str | None = None,
    name: str | None = None,
    channel_account_id: int | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> TemplateList:
    rows, next_id = templates.list_templates(
        session,
        status=status,
        language=language,
        name=name,
        channel_account_id=channel_account_id,
        after_id=cursor_int(cursor),
        limit=limit,
    )
    return TemplateList(
        templates=templates.present(session, rows),
        next_cursor=encode_cursor(id=next_id) if next_id else None,
    )


@router.post("/sync", response_model=TemplateSyncResult)
async def sync_templates(db: DbDep, settings: SettingsDep, actor: AdminActor) -> TemplateSyncResult:
    """Pulls WhatsApp's list now (it also runs every 15 minutes), adding templates made in Meta's UI."""
    return await run_in_threadpool(template_updates.sync_or_raise, db, settings, actor)


@router.delete("", response_model=TemplateDeleted)
async def delete_by_name(
    db: DbDep,
    settings: SettingsDep,
    actor: AdminActor,
    name: Annotated[str, Query(min_length=1)],
    language: Annotated[str | None, Query(description="only this language; all when absent")] = None,
    channel: str | None = None,
) -> TemplateDeleted:
    """Deletes every language of template ``name`` (or only ``language``), at WhatsApp and here."""
    deleted = await run_in_threadpool(
        lambda: templates.delete_templates(db, settings, actor, name=name, language=language, channel=channel)
    )
    return TemplateDeleted(deleted=deleted)


@router.get("/{template_id}", response_model=TemplatePublic)
def read_template(session: SessionDep, actor: AgentActor, template_id: int) -> TemplatePublic:
    return templates.present_one(session, templates.get(session, template_id))


@router.delete("/{template_id}", response_model=TemplateDeleted)
async def delete_template(
    db: DbDep, settings: SettingsDep, actor: AdminActor, template_id: int
) -> TemplateDeleted:
    """Deletes this one template (one language), at WhatsApp and here."""
    deleted = await run_in_threadpool(
        lambda: templates.delete_templates(db, settings, actor, template_id=template_id)
    )
    return TemplateDeleted(deleted=deleted)
