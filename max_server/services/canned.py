"""Canned responses: global, team and personal quick replies, their variables, and their use.

Who sees what: everyone sees the global ones, members see their teams' ones (admins see every
team's), and only the owner sees a personal one. Who changes what: admins the global ones, admins
and the team's supervisors a team's ones, the owner a personal one. When one shortcut exists in
several scopes, personal > team > global decides which one ``/shortcut`` inserts (``effective``).
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from max_server import clock
from max_server.access import Actor
from max_server.domain import templating
from max_server.errors import Conflict as ConflictError
from max_server.errors import Forbidden, Unprocessable, not_found
from max_server.models import CannedResponse, Conversation, Customer, Message, Team, User
from max_server.schemas import (
    CannedRendered,
    CannedResponseCreate,
    CannedResponsePublic,
    CannedResponseUpdate,
    CannedUsage,
    TeamRef,
)
from max_server.services import audit, replies
from max_server.services.conversations import get_visible as get_visible_conversation
from max_server.services.teams import find_team

_RANK = {"personal": 0, "team": 1, "global": 2}


# Context variables ------------------------------------------------------------------------
def context_values(
    session: Session, conversation: Conversation | None, agent: User | None
) -> dict[str, str | None]:
    """The variables MAX fills itself (``templating.CONTEXT_VARIABLES``)."""
    values: dict[str, str | None] = dict.fromkeys(templating.CONTEXT_VARIABLES)
    if agent is not None:
        values["agent_name"] = agent.name
        values["agent_first_name"] = templating.first_name(agent.name)
    if conversation is None:
        return values
    customer = session.get(Customer, conversation.customer_id)
    if customer is not None:
        values["customer_name"] = customer.name
        values["customer_first_name"] = templating.first_name(customer.name)
        values["customer_email"] = customer.email
        values["customer_phone"] = customer.phone_e164
    team = session.get(Team, conversation.team_id) if conversation.team_id else None
    values["team_name"] = team.name if team else None
    values["conversation_number"] = str(conversation.number)
    return values


# Visibility and presentation --------------------------------------------------------------
def _visible_clause(actor: Actor) -> ColumnElement[bool]:
    scope = col(CannedResponse.scope)
    clauses: list[ColumnElement[bool]] = [scope == "global"]
    if actor.is_admin:
        clauses.append(scope == "team")
    elif actor.teams:
        clauses.append(and_(scope == "team", col(CannedResponse.team_id).in_(sorted(actor.teams))))
    if actor.user_id is not None:
        clauses.append(and_(scope == "personal", col(CannedResponse.owner_id) == actor.user_id))
    return or_(*clauses)


def can_see(actor: Actor, row: CannedResponse) -> bool:
    if row.scope == "global":
        return True
    if row.scope == "team":
        return actor.is_admin or actor.belongs_to(row.team_id)
    return row.owner_id is not None and row.owner_id == actor.user_id


def can_manage(actor: Actor, row: CannedResponse) -> bool:
    if row.scope == "global":
        return actor.is_admin
    if row.scope == "team":
        return actor.supervises(row.team_id)
    return row.owner_id is not None and row.owner_id == actor.user_id


def present(
    session: Session, rows: list[CannedResponse], effective: set[int] | None = None
) -> list[CannedResponsePublic]:
    team_ids = sorted({r.team_id for r in rows if r.team_id is not None})
    teams = (
        {t.id: t for t in session.exec(select(Team).where(col(Team.id).in_(team_ids)))} if team_ids else {}
    )
    out = []
    for row in rows:
        try:
            names = templating.variables(row.content)
        except templating.TemplateError:  # saved before validation existed: show it, list none
            names = []
        team = teams.get(row.team_id) if row.team_id is not None else None
        out.append(
            CannedResponsePublic.model_validate(
                {
                    **row.model_dump(),
                    "team": TeamRef.model_validate(team) if team else None,
                    "variables": names,
                    "effective": effective is None or row.id in effective,
                }
            )
        )
    return out


def _effective(rows: list[CannedResponse], preferred_team: int | None) -> set[int]:
    """The id that wins for each shortcut: personal > team (the preferred team first) > global."""
    best: dict[str, tuple[tuple[int, int, int, int], int]] = {}
    for row in rows:
        assert row.id is not None
        key = (
            _RANK[row.scope],
            0 if row.team_id is not None and row.team_id == preferred_team else 1,
            row.team_id or 0,
            row.id,
        )
        current = best.get(row.shortcut)
        if current is None or key < current[0]:
            best[row.shortcut] = (key, row.id)
    return {winner for _, winner in best.values()}


def _search_group(row: CannedResponse, query: str) -> int | None:
    """Chatwoot's order: shortcut prefix, then shortcut contains, then title or content contains."""
    shortcut = row.shortcut.lstrip("/")
    if shortcut.startswith(query):
        return 0
    if query in shortcut:
        return 1
    if query in row.title.lower() or query in row.content.lower():
        return 2
    return None


def list_visible(
    session: Session, actor: Actor, *, q: str | None = None, team_ref: str | None = None
) -> list[CannedResponsePublic]:
    """Everything the actor may see, in one list (the console filters it locally)."""
    preferred = find_team(session, team_ref).id if team_ref else None
    rows = list(session.exec(select(CannedResponse).where(_visible_clause(actor))))
    winners = _effective(rows, preferred)
    query = (q or "").strip().lower().lstrip("/")
    if query:
        grouped = [(group, row) for row in rows if (group := _search_group(row, query)) is not None]
        ordered = [
            row
            for _, row in sorted(
                grouped, key=lambda item: (item[0], item[1].shortcut, _RANK[item[1].scope], item[1].id)
            )
        ]
    else:
        ordered = sorted(rows, key=lambda r: (r.shortcut, _RANK[r.scope], r.id))
    return present(session, ordered, winners)


def get_visible(session: Session, actor: Actor, response_id: int) -> CannedResponse:
    row = session.get(CannedResponse, response_id)
    if row is None or not can_see(actor, row):
        raise not_found("canned response", response_id)
    return row


# Changes ----------------------------------------------------------------------------------
def _check_content(content: str) -> None:
    try:
        templating.placeholders(content)
    except templating.TemplateError as exc:
        raise Unprocessable(str(exc), code="invalid_template") from None


def _save(session: Session, row: CannedResponse) -> None:
    session.add(row)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise ConflictError(f"{row.shortcut} exists already in this scope", code="shortcut_exists") from None


def create(session: Session, actor: Actor, data: CannedResponseCreate) -> CannedResponsePublic:
    _check_content(data.content)
    if data.personal and data.team_id:
        raise Unprocessable("a response is personal or a team's, not both", code="invalid_scope")
    team_id = None
    if data.personal:
        if actor.user_id is None:
            raise Unprocessable("only a user can own a personal response", code="invalid_scope")
        scope = "personal"
    elif data.team_id:
        team_id = find_team(session, data.team_id).id
        scope = "team"
        if not actor.supervises(team_id):
            raise Forbidden("only admins and the team's supervisors add its responses", code="not_allowed")
    else:
        scope = "global"
        if not actor.is_admin:
            raise Forbidden(
                "only admins add global responses; add a personal one with personal: true",
                code="not_allowed",
            )
    row = CannedResponse(
        scope=scope,
        team_id=team_id,
        owner_id=actor.user_id if scope == "personal" else None,
        shortcut=data.shortcut,
        title=data.title,
        content=data.content,
        category=data.category or None,
        created_by_id=actor.user_id,
    )
    _save(session, row)
    audit.record(session, actor, "canned.created", "canned_response", row.id, {"shortcut": row.shortcut})
    session.commit()
    return present(session, [row])[0]


def _managed(session: Session, actor: Actor, response_id: int) -> CannedResponse:
    row = get_visible(session, actor, response_id)
    if not can_manage(actor, row):
        raise Forbidden("you may not change this response", code="not_allowed")
    return row


def update_response(
    session: Session, actor: Actor, response_id: int, data: CannedResponseUpdate
) -> CannedResponsePublic:
    row = _managed(session, actor, response_id)
    changes = data.model_dump(exclude_unset=True)
    if changes.get("content") is not None:
        _check_content(changes["content"])
    for key, value in changes.items():
        if key == "category":
            row.category = value or None  # an empty category removes it
        elif value is not None:
            setattr(row, key, value)
    row.updated_at = clock.now()
    _save(session, row)
    audit.record(session, actor, "canned.updated", "canned_response", row.id, changes)
    session.commit()
    return present(session, [row])[0]


def delete_response(session: Session, actor: Actor, response_id: int) -> None:
    row = _managed(session, actor, response_id)
    audit.record(session, actor, "canned.deleted", "canned_response", row.id, {"shortcut": row.shortcut})
    session.delete(row)
    session.commit()


# Rendering and use ------------------------------------------------------------------------
def _render(
    session: Session,
    actor: Actor,
    row: CannedResponse,
    conversation_id: int | None,
    given: dict[str, str],
) -> CannedRendered:
    conversation = get_visible_conversation(session, actor, conversation_id) if conversation_id else None
    agent = session.get(User, actor.user_id) if actor.user_id is not None else None
    try:
        templating.check_given(given)
    except templating.InvalidValues as exc:
        raise Unprocessable(
            f"remove {{{{ and }}}} from the value of {', '.join(exc.names)}",
            code="invalid_variable_value",
            details={"variables": exc.names},
        ) from None
    values = {**context_values(session, conversation, agent), **given}  # what the agent types wins
    try:
        text = templating.render(row.content, values)
    except templating.MissingVariables as exc:
        raise Unprocessable(
            "fill in " + ", ".join(exc.names) + " before sending",
            code="missing_variables",
            details={"missing": exc.names},
        ) from None
    except templating.TemplateError as exc:
        raise Unprocessable(str(exc), code="invalid_template") from None
    return CannedRendered(text=text, variables=templating.filled(row.content, values))


def render(
    session: Session, actor: Actor, response_id: int, conversation_id: int | None, given: dict[str, str]
) -> CannedRendered:
    """The response's text with its variables filled; 422 ``missing_variables`` names those
    without a value or fallback, so a literal ``{{…}}`` never reaches a customer."""
    return _render(session, actor, get_visible(session, actor, response_id), conversation_id, given)


def _increment(session: Session, response_id: int) -> int:
    # One statement: concurrent uses never lose a count.
    return int(
        session.execute(
            update(CannedResponse)
            .where(col(CannedResponse.id) == response_id)
            .values(usage_count=CannedResponse.usage_count + 1)
            .returning(col(CannedResponse.usage_count))
        ).scalar_one()
    )


def mark_used(session: Session, actor: Actor, response_id: int) -> CannedUsage:
    """Counts one use (the console calls it after sending a response the agent edited)."""
    get_visible(session, actor, response_id)
    count = _increment(session, response_id)
    session.commit()
    return CannedUsage(id=response_id, usage_count=count)


def send(
    session: Session, actor: Actor, response_id: int, conversation_id: int, given: dict[str, str]
) -> Message:
    """Renders the response and sends it as the agent's reply; the use is counted in the same
    transaction, so a refused send (closed window, closed conversation) counts nothing."""
    row = get_visible(session, actor, response_id)
    rendered = _render(session, actor, row, conversation_id, given)
    _increment(session, response_id)
    return replies.reply_text(session, actor, conversation_id, rendered.text)
