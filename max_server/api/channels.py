"""Channel accounts (admins)."""

from __future__ import annotations

from fastapi import APIRouter, status

from max_server.api.deps import AdminActor, AgentActor, SessionDep
from max_server.schemas import ChannelAccountList, ChannelAccountPublic, DefaultTeamSet, WhatsAppAccountCreate
from max_server.services import channels, present

router = APIRouter(prefix="/api/v1/channels", tags=["channels"])


@router.get("", response_model=ChannelAccountList)
def list_channels(session: SessionDep, actor: AgentActor) -> ChannelAccountList:
    return ChannelAccountList(channels=present.channel_accounts(session, channels.list_accounts(session)))


@router.post("/whatsapp", response_model=ChannelAccountPublic, status_code=status.HTTP_201_CREATED)
def add_whatsapp(session: SessionDep, actor: AdminActor, body: WhatsAppAccountCreate) -> ChannelAccountPublic:
    """Adds another WhatsApp business number (its webhooks come to the same endpoint)."""
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


@router.put("/{channel}/default-team", response_model=ChannelAccountPublic)
def set_default_team(
    session: SessionDep, actor: AdminActor, channel: str, body: DefaultTeamSet
) -> ChannelAccountPublic:
    """The team that new conversations on this channel start in (before routing rules)."""
    account = channels.set_default_team(session, actor, channel, body.team)
    return present.channel_accounts(session, [account])[0]
