"""Channel accounts (admins)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from max_server.api.deps import AdminActor, AgentActor, SessionDep
from max_server.schemas import (
    ChannelAccountList,
    ChannelAccountPublic,
    ChannelAccountUpdate,
    DefaultTeamSet,
    WhatsAppAccountCreate,
)
from max_server.services import channels, present
from max_server.services.pagination import cursor_int, encode_cursor

router = APIRouter(prefix="/api/v1/channels", tags=["channels"])


@router.get("", response_model=ChannelAccountList)
def list_channels(
    session: SessionDep,
    actor: AgentActor,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> ChannelAccountList:
    """Oldest first; follow ``next_cursor`` for more."""
    rows, next_id = channels.list_accounts(session, after_id=cursor_int(cursor), limit=limit)
    return ChannelAccountList(
        channels=present.channel_accounts(session, rows),
        next_cursor=encode_cursor(id=next_id) if next_id else None,
    )


@router.post("/whatsapp", response_model=ChannelAccountPublic, status_code=status.HTTP_201_CREATED)
def add_whatsapp(session: SessionDep, actor: AdminActor, body: WhatsAppAccountCreate) -> ChannelAccountPublic:
    """Adds another WhatsApp business number (its webhooks come to the same endpoint). A number
    MAX already added from its first webhook answers 409 ``channel_exists``: PATCH it instead."""
    account = channels.add_whatsapp(
        session,
        actor,
        phone_number_id=body.phone_number_id,
        waba_id=body.waba_id,
        display_number=body.display_number,
        name=body.name,
        default_team=body.default_team,
    )
    return present.channel_accounts(session, [account])[0]


@router.get("/{channel}", response_model=ChannelAccountPublic)
def read_channel(session: SessionDep, actor: AgentActor, channel: str) -> ChannelAccountPublic:
    """A channel account by id or external id (WhatsApp phone_number_id)."""
    return present.channel_accounts(session, [channels.find_account(session, channel)])[0]


@router.patch("/{channel}", response_model=ChannelAccountPublic)
def update_channel(
    session: SessionDep, actor: AdminActor, channel: str, body: ChannelAccountUpdate
) -> ChannelAccountPublic:
    """Changes a channel's name, WhatsApp Business Account id or display number."""
    account = channels.update(
        session, actor, channel, name=body.name, waba_id=body.waba_id, display_number=body.display_number
    )
    return present.channel_accounts(session, [account])[0]


@router.put("/{channel}/default-team", response_model=ChannelAccountPublic)
def set_default_team(
    session: SessionDep, actor: AdminActor, channel: str, body: DefaultTeamSet
) -> ChannelAccountPublic:
    """The team that new conversations on this channel start in (before routing rules)."""
    account = channels.set_default_team(session, actor, channel, body.team)
    return present.channel_accounts(session, [account])[0]
