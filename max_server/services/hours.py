"""Teams' business hours, holidays and after-hours message; the after-hours reply.

Admins change them; anyone may read them. Any change asks the SLA deadlines of the team's open
conversations to be recomputed (business-hours-only policies count on this calendar).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from zoneinfo import ZoneInfo

from sqlalchemy import delete
from sqlmodel import Session, col, select

from max_server import clock
from max_server.access import Actor
from max_server.db import dialect_insert
from max_server.domain import hours as calendar
from max_server.domain import templating
from max_server.errors import Forbidden, Unprocessable, not_found
from max_server.models import BusinessHours, ChannelAccount, Conversation, Holiday, Message, Team
from max_server.schemas import (
    HolidayImported,
    HolidayPublic,
    HoursCheck,
    HoursInterval,
    HoursPublic,
    HoursReplace,
    HoursSet,
    TeamRef,
)
from max_server.services import audit, canned, conversation_rows, replies, sla_policies
from max_server.services.teams import find_team, valid_timezone

log = logging.getLogger("max.hours")
_H = Holiday.__table__  # type: ignore[attr-defined]
AFTER_HOURS = "after_hours"  # the payload marker of the automatic reply
SYSTEM = Actor.system("after-hours")


def _require_admin(actor: Actor) -> None:
    if not actor.is_admin:
        raise Forbidden("only admins change business hours", code="insufficient_role")


def _clock(text: str) -> dt.time:
    hour, minute = text.split(":")
    return dt.time(int(hour), int(minute))


# Reading ----------------------------------------------------------------------------------
def intervals_of(session: Session, team_ids: Iterable[int]) -> dict[int, list[BusinessHours]]:
    wanted = sorted(set(team_ids))
    found: dict[int, list[BusinessHours]] = {team_id: [] for team_id in wanted}
    if wanted:
        rows = session.exec(
            select(BusinessHours)
            .where(col(BusinessHours.team_id).in_(wanted))
            .order_by(col(BusinessHours.weekday), col(BusinessHours.opens), col(BusinessHours.id))
        )
        for row in rows:
            found[row.team_id].append(row)
    return found


def schedules_for(session: Session, teams: Iterable[Team]) -> dict[int, calendar.Schedule]:
    """Each team's calendar, in three queries whatever the number of teams."""
    by_id = {team.id: team for team in teams if team.id is not None}
    hours = intervals_of(session, by_id)
    days: dict[int, set[dt.date]] = {team_id: set() for team_id in by_id}
    if by_id:
        for team_id, day in session.exec(
            select(col(Holiday.team_id), col(Holiday.date)).where(col(Holiday.team_id).in_(sorted(by_id)))
        ):
            days[team_id].add(day)
    return {
        team_id: calendar.Schedule(
            team.timezone,
            tuple(calendar.Interval(h.weekday, h.opens, h.closes) for h in hours[team_id]),
            frozenset(days[team_id]),
        )
        for team_id, team in by_id.items()
    }


def schedule_for(session: Session, team: Team) -> calendar.Schedule:
    assert team.id is not None
    return schedules_for(session, [team])[team.id]


def show(session: Session, team_ref: str) -> HoursPublic:
    team = find_team(session, team_ref)
    assert team.id is not None
    rows = intervals_of(session, [team.id])[team.id]
    today = clock.now().astimezone(ZoneInfo(team.timezone)).date()
    upcoming = session.exec(
        select(Holiday)
        .where(Holiday.team_id == team.id, col(Holiday.date) >= today)
        .order_by(col(Holiday.date))
        .limit(100)
    )
    return HoursPublic(
        team=TeamRef.model_validate(team),
        timezone=team.timezone,
        configured=bool(rows),
        intervals=[
            HoursInterval(
                weekday=row.weekday,
                day=calendar.WEEKDAYS[row.weekday],
                opens=row.opens.strftime("%H:%M"),
                closes=row.closes.strftime("%H:%M"),
                overnight=row.closes <= row.opens,
            )
            for row in rows
        ],
        holidays=[HolidayPublic.model_validate(h) for h in upcoming],
        after_hours_message=team.after_hours_message,
    )


def check(session: Session, team_ref: str, at: dt.datetime | None = None) -> HoursCheck:
    """Open at ``at`` (default now)? When does it next open, and when does that opening end?"""
    team = find_team(session, team_ref)
    moment = (at or clock.now()).astimezone(dt.UTC)
    schedule = schedule_for(session, team)
    if calendar.is_open(schedule, moment):
        closing = calendar.next_close(schedule, moment)
        opening = calendar.next_open(schedule, closing) if closing is not None else None
    else:
        opening = calendar.next_open(schedule, moment)
        closing = calendar.next_close(schedule, opening) if opening is not None else None
    return HoursCheck(
        team=team.slug,
        at=moment,
        is_open=calendar.is_open(schedule, moment),
        next_open=opening,
        next_close=closing,
    )


# Changing ---------------------------------------------------------------------------------
def set_timezone(team: Team, timezone: str | None) -> bool:
    """Sets the team's time zone (422 ``invalid_timezone`` for an unknown one); returns whether
    it changed, i.e. whether SLA deadlines on business hours must be recomputed."""
    if timezone is None:
        return False
    checked = valid_timezone(timezone)
    changed = checked != team.timezone
    team.timezone = checked
    return changed


def _changed(session: Session, actor: Actor, team: Team, action: str, data: dict[str, object]) -> None:
    assert team.id is not None
    session.add(team)
    audit.record(session, actor, action, "team", team.id, data)
    sla_policies.request_recompute(session, team.id)
    session.commit()


def set_days(session: Session, actor: Actor, team_ref: str, data: HoursSet) -> HoursPublic:
    """Replaces the intervals of ``data.days`` with one (or adds one, with ``add``)."""
    _require_admin(actor)
    team = find_team(session, team_ref)
    assert team.id is not None
    set_timezone(team, data.timezone)
    if not data.add:
        session.execute(
            delete(BusinessHours).where(
                col(BusinessHours.team_id) == team.id, col(BusinessHours.weekday).in_(data.days)
            )
        )
    for day in data.days:
        session.add(
            BusinessHours(team_id=team.id, weekday=day, opens=_clock(data.opens), closes=_clock(data.closes))
        )
    _changed(session, actor, team, "hours.set", data.model_dump())
    return show(session, team.slug)


def replace_week(session: Session, actor: Actor, team_ref: str, data: HoursReplace) -> HoursPublic:
    _require_admin(actor)
    team = find_team(session, team_ref)
    assert team.id is not None
    set_timezone(team, data.timezone)
    session.execute(delete(BusinessHours).where(col(BusinessHours.team_id) == team.id))
    for item in data.intervals:
        session.add(
            BusinessHours(
                team_id=team.id, weekday=item.weekday, opens=_clock(item.opens), closes=_clock(item.closes)
            )
        )
    _changed(session, actor, team, "hours.replaced", data.model_dump())
    return show(session, team.slug)


def clear(session: Session, actor: Actor, team_ref: str, days: list[int] | None = None) -> HoursPublic:
    """Removes the weekly hours (of ``days`` only, if given): the team is then always open."""
    _require_admin(actor)
    team = find_team(session, team_ref)
    statement = delete(BusinessHours).where(col(BusinessHours.team_id) == team.id)
    if days:
        statement = statement.where(col(BusinessHours.weekday).in_(days))
    session.execute(statement)
    _changed(session, actor, team, "hours.cleared", {"days": days})
    return show(session, team.slug)


def check_message(text: str) -> None:
    """An automatic message may use only the context's variables, or others with a fallback."""
    try:
        placeholders = templating.placeholders(text)
    except templating.TemplateError as exc:
        raise Unprocessable(str(exc), code="invalid_template") from None
    unknown = sorted(
        {p.name for p in placeholders if p.fallback is None and p.name not in templating.CONTEXT_VARIABLES}
    )
    if unknown:
        raise Unprocessable(
            f"no one can fill {', '.join(unknown)} in an automatic message: use the context's "
            f"variables ({', '.join(templating.CONTEXT_VARIABLES)}) or give a fallback, {{{{name|text}}}}",
            code="unknown_variables",
            details={"variables": unknown},
        )


def checked_message(message: str | None) -> str | None:
    """The after-hours message as stored: trimmed, None when blank, refused (422) when it could
    not be rendered (see :func:`check_message`)."""
    text = (message or "").strip() or None
    if text is not None:
        check_message(text)
    return text


def set_message(session: Session, actor: Actor, team_ref: str, message: str | None) -> HoursPublic:
    _require_admin(actor)
    team = find_team(session, team_ref)
    text = team.after_hours_message = checked_message(message)
    session.add(team)
    audit.record(session, actor, "hours.message_set", "team", team.id, {"message": text})
    session.commit()
    return show(session, team.slug)


# Holidays ---------------------------------------------------------------------------------
def list_holidays(session: Session, team_ref: str, year: int | None = None) -> list[Holiday]:
    team = find_team(session, team_ref)
    query = select(Holiday).where(Holiday.team_id == team.id)
    if year is not None:
        query = query.where(
            col(Holiday.date) >= dt.date(year, 1, 1), col(Holiday.date) <= dt.date(year, 12, 31)
        )
    return list(session.exec(query.order_by(col(Holiday.date))))


def _insert_holidays(session: Session, team_id: int, days: dict[dt.date, str]) -> int:
    if not days:
        return 0
    inserted = session.execute(
        dialect_insert(session, _H)
        .values([{"team_id": team_id, "date": day, "name": name[:200]} for day, name in sorted(days.items())])
        .on_conflict_do_nothing(index_elements=["team_id", "date"])
        .returning(_H.c.id)
    ).all()
    return len(inserted)


def add_holiday(session: Session, actor: Actor, team_ref: str, day: dt.date, name: str = "") -> HolidayPublic:
    _require_admin(actor)
    team = find_team(session, team_ref)
    assert team.id is not None
    existing = session.exec(select(Holiday).where(Holiday.team_id == team.id, Holiday.date == day)).first()
    if existing is not None:
        existing.name = name or existing.name
        session.add(existing)
    else:
        _insert_holidays(session, team.id, {day: name})
    _changed(session, actor, team, "hours.holiday_added", {"date": day.isoformat(), "name": name})
    return HolidayPublic(date=day, name=name or (existing.name if existing else ""))


def remove_holiday(session: Session, actor: Actor, team_ref: str, day: dt.date) -> None:
    _require_admin(actor)
    team = find_team(session, team_ref)
    found = session.exec(select(Holiday).where(Holiday.team_id == team.id, Holiday.date == day)).first()
    if found is None:
        raise not_found("holiday", day.isoformat())
    session.delete(found)
    _changed(session, actor, team, "hours.holiday_removed", {"date": day.isoformat()})


def import_holidays(
    session: Session,
    actor: Actor,
    team_ref: str,
    country: str,
    year: int,
    subdivision: str | None = None,
    language: str | None = None,
) -> HolidayImported:
    """A country's (and subdivision's) public holidays of ``year`` from the ``holidays``
    package; dates the team already has are kept as they are."""
    import holidays as public_holidays

    _require_admin(actor)
    team = find_team(session, team_ref)
    assert team.id is not None
    try:
        found = public_holidays.country_holidays(
            country.upper(), subdiv=subdivision, years=year, language=language
        )
    except NotImplementedError as exc:
        raise Unprocessable(str(exc), code="unknown_calendar") from None
    days = {day: str(name) for day, name in sorted(found.items()) if day.year == year}
    added = _insert_holidays(session, team.id, days)
    _changed(
        session,
        actor,
        team,
        "hours.holidays_imported",
        {"country": country.upper(), "subdivision": subdivision, "year": year, "added": added},
    )
    return HolidayImported(
        added=added,
        existing=len(days) - added,
        holidays=[HolidayPublic(date=day, name=name) for day, name in days.items()],
    )


# After hours ------------------------------------------------------------------------------
def send_after_hours_reply(session: Session, conversation_id: int) -> Message | None:
    """The team's after-hours message as a ``system`` message, sent like agents' replies; at
    most once per conversation, and not once an agent has answered or it is closed. Commits."""
    conversation = session.exec(
        select(Conversation).where(Conversation.id == conversation_id).with_for_update()
    ).first()
    if conversation is None or conversation.status == "closed" or conversation.first_response_at is not None:
        return None
    team = session.get(Team, conversation.team_id) if conversation.team_id else None
    text = (team.after_hours_message or "").strip() if team else ""
    if not text:
        return None
    automatic = session.exec(
        select(Message.payload).where(
            Message.conversation_id == conversation_id,
            Message.sender_type == "system",
            Message.direction == "outbound",
        )
    ).all()
    if any(payload.get("auto") == AFTER_HOURS for payload in automatic):
        return None  # a retry after the reply was stored: once is enough
    account = session.get(ChannelAccount, conversation.channel_account_id)
    assert account is not None
    try:
        rendered = templating.render(text, canned.context_values(session, conversation, None), strict=False)
    except templating.TemplateError:
        # Saved before messages were checked: retrying cannot fix it, and braces never go out.
        log.warning("team %s: the after-hours message is malformed; not sent", conversation.team_id)
        return None
    if not rendered.strip():
        return None
    return replies.queue_outbound(
        session,
        SYSTEM,
        conversation,
        account,
        text=rendered,
        type_="text",
        payload={"auto": AFTER_HOURS},
        sender_type="system",
    )


def mark_after_hours(session: Session, conversation: Conversation, now: dt.datetime) -> bool:
    """For a new conversation: outside its team's hours it becomes ``after_hours`` with priority
    ``low``. Returns whether an after-hours reply should go out. Inside the caller's transaction."""
    if conversation.team_id is None:
        return False
    team = session.get(Team, conversation.team_id)
    if team is None or calendar.is_open(schedule_for(session, team), now):
        return False
    conversation.after_hours = True
    fields = set()
    if conversation.priority != "low":
        conversation.priority = "low"
        fields.add("priority")
    conversation.updated_at = now
    session.add(conversation)
    conversation_rows.changed(session, conversation, fields, now)
    conversation_rows.emit(session, "conversation.updated", conversation)
    return bool((team.after_hours_message or "").strip())
