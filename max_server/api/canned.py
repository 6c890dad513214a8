"""Canned responses: everything the caller may see in one list (with an ETag, so the console can
revalidate cheaply and filter locally), changes, rendering, and counting uses."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response, status

from max_server.api.deps import AgentActor, SessionDep
from max_server.errors import Unprocessable
from max_server.schemas import (
    CannedRender,
    CannedRendered,
    CannedResponseCreate,
    CannedResponseList,
    CannedResponsePublic,
    CannedResponseUpdate,
    CannedSend,
    CannedUsage,
    MessagePublic,
)
from max_server.services import canned, present

router = APIRouter(prefix="/api/v1/canned-responses", tags=["canned responses"])


def _etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    candidates = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in candidates or etag in candidates


@router.get(
    "",
    response_model=CannedResponseList,
    responses={304: {"description": "Not modified: the `If-None-Match` ETag is current"}},
)
def list_responses(
    session: SessionDep,
    actor: AgentActor,
    q: Annotated[
        str | None, Query(description="search: shortcut prefix, shortcut, then title or content")
    ] = None,
    team: Annotated[str | None, Query(description="team (slug or id) that wins ties between teams")] = None,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """Every response the caller may see (global, their teams', their own), in one list;
    ``effective`` marks the one ``/shortcut`` inserts when a shortcut repeats."""
    listed = CannedResponseList(responses=canned.list_visible(session, actor, q=q, team_ref=team))
    body = json.dumps(listed.model_dump(mode="json"), ensure_ascii=False, separators=(",", ":")).encode()
    etag = _etag(body)
    headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
    if _matches(if_none_match, etag):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(content=body, media_type="application/json", headers=headers)


@router.post("", response_model=CannedResponsePublic, status_code=status.HTTP_201_CREATED)
def create_response(
    session: SessionDep, actor: AgentActor, body: CannedResponseCreate
) -> CannedResponsePublic:
    """Global (admins), a team's (``team_id``; its supervisors and admins) or personal
    (``personal: true``; anyone)."""
    return canned.create(session, actor, body)


@router.get("/{response_id}", response_model=CannedResponsePublic)
def read_response(session: SessionDep, actor: AgentActor, response_id: int) -> CannedResponsePublic:
    return canned.present(session, [canned.get_visible(session, actor, response_id)])[0]


@router.patch("/{response_id}", response_model=CannedResponsePublic)
def update_response(
    session: SessionDep, actor: AgentActor, response_id: int, body: CannedResponseUpdate
) -> CannedResponsePublic:
    return canned.update_response(session, actor, response_id, body)


@router.delete("/{response_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_response(session: SessionDep, actor: AgentActor, response_id: int) -> Response:
    canned.delete_response(session, actor, response_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{response_id}/render", response_model=CannedRendered)
def render_response(
    session: SessionDep, actor: AgentActor, response_id: int, body: CannedRender
) -> CannedRendered:
    """The text with its variables filled from the conversation and ``variables``; 422
    ``missing_variables`` (``details.missing``) names those still without a value, 422
    ``invalid_variable_value`` (``details.variables``) those given with ``{{`` or ``}}``."""
    conversation_id = _conversation_id(body.conversation_id) if body.conversation_id else None
    return canned.render(session, actor, response_id, conversation_id, body.variables)


@router.post("/{response_id}/send", response_model=MessagePublic, status_code=status.HTTP_201_CREATED)
def send_response(
    session: SessionDep, actor: AgentActor, response_id: int, body: CannedSend
) -> MessagePublic:
    """Renders the response and sends it as the caller's reply; counts the use in the same
    transaction (nothing is counted when the send is refused)."""
    conversation_id = _conversation_id(body.conversation_id)
    message = canned.send(session, actor, response_id, conversation_id, body.variables)
    return present.message(session, message)


def _conversation_id(value: str) -> int:
    """Ids are strings on the wire; anything but digits is refused (not a 500)."""
    if not (value.isascii() and value.isdigit()):
        raise Unprocessable("conversation_id must be a conversation's id", code="invalid_conversation_id")
    return int(value)


@router.post("/{response_id}/used", response_model=CannedUsage)
def mark_used(session: SessionDep, actor: AgentActor, response_id: int) -> CannedUsage:
    """Counts one use, atomically (for a response the agent edited and sent as a normal reply)."""
    return canned.mark_used(session, actor, response_id)
