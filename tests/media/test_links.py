"""``GET /api/v1/media/{id}`` (who may ask, link lifetimes, pending and failed media) and the local
backend's signed ``/media/…`` links (tampered or expired → 403 with the error envelope)."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from sqlmodel import select

from max_server.clock import FrozenClock
from max_server.db import Database
from max_server.jobs.worker import Worker
from max_server.models import Conversation
from max_server.services import media as media_service
from tests.conftest import People
from tests.media.conftest import Customer, MediaRow, blob, link_for
from tests.support import factories
from tests.support.live import LiveServer


def iso(value: object) -> str:
    return value.isoformat().replace("+00:00", "Z")  # type: ignore[attr-defined]


def test_only_agents_who_see_the_conversation_get_a_link(
    customer: Customer, worker: Worker, people: People, live: LiveServer, db: Database, row: MediaRow
) -> None:
    ours, _ = customer.sends(blob(1000, "v"), "image/jpeg")
    worker.drain()
    team = people.team("ventas")
    member, member_token = people.user("agent")
    _, outsider_token = people.user("agent")
    people.join(team, member)
    with db.session() as session:
        conversation = session.get(Conversation, row(ours).conversation_id)
        assert conversation is not None
        conversation.team_id = team.id
        session.add(conversation)
        session.commit()
    hidden = link_for(live, outsider_token, ours)
    assert hidden.status_code == 404
    assert hidden.json()["error"]["code"] == "media_not_found"
    assert link_for(live, outsider_token, 999_999).json()["error"]["code"] == "media_not_found"
    seen = link_for(live, member_token, ours)
    assert seen.status_code == 200
    assert httpx.get(seen.json()["url"]).status_code == 200
    assert httpx.get(f"{live.url}/api/v1/media/{ours}").status_code == 401


def test_a_link_lives_the_requested_time_but_never_past_retention(
    customer: Customer, worker: Worker, people: People, live: LiveServer, clock: FrozenClock, row: MediaRow
) -> None:
    _, admin = people.user("admin")
    ours, _ = customer.sends(blob(1000, "t"), "image/jpeg")
    worker.drain()
    assert link_for(live, admin, ours, ttl="10m").json()["expires_at"] == iso(
        clock.now() + timedelta(minutes=10)
    )
    assert link_for(live, admin, ours, ttl="90").json()["expires_at"] == iso(
        clock.now() + timedelta(seconds=90)
    )
    for bad in ("soon", "0", "8d"):
        refused = link_for(live, admin, ours, ttl=bad)
        assert refused.status_code == 422, bad
        assert refused.json()["error"]["code"] == "invalid_ttl"
    retained_until = row(ours).expires_at
    assert retained_until is not None
    clock.advance(days=7, minutes=-10)
    capped = link_for(live, admin, ours, ttl="2h").json()
    assert capped["expires_at"] == iso(retained_until)
    assert capped["retained_until"] == iso(retained_until)


def test_pending_and_failed_media_say_so_with_their_metadata(
    customer: Customer, worker: Worker, people: People, live: LiveServer, clock: FrozenClock
) -> None:
    _, admin = people.user("admin")
    pending, media_id = customer.sends(blob(1000, "p"), "image/jpeg")
    answer = link_for(live, admin, pending)
    assert answer.status_code == 409
    error = answer.json()["error"]
    assert error["code"] == "media_pending"
    assert error["details"]["status"] == "pending" and error["details"]["id"] == str(pending)
    customer.sandbox.media_failures(media_id, 1)
    worker.drain()
    retrying = link_for(live, admin, pending).json()["error"]
    assert retrying["code"] == "media_pending"
    assert "last try: WhatsApp answered HTTP 500" in retrying["message"]


def test_tampered_and_expired_local_links_get_403(
    customer: Customer, worker: Worker, people: People, live: LiveServer, clock: FrozenClock
) -> None:
    _, admin = people.user("admin")
    ours, _ = customer.sends(blob(5000, "x"), "application/pdf", filename="a.pdf")
    worker.drain()
    url = link_for(live, admin, ours, ttl="1m").json()["url"]
    assert httpx.get(url).status_code == 200
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}

    def with_(path: str | None = None, **changes: str) -> str:
        return f"{parts.scheme}://{parts.netloc}{path or parts.path}?{urlencode({**query, **changes})}"

    tampered = [
        with_(sig=query["sig"][:-2] + "AA"),
        with_(exp=str(int(query["exp"]) + 86400)),
        with_(name="evil.html"),
        with_(type="text/html"),
        with_(parts.path.replace("a.pdf", "b.pdf")),
        f"{parts.scheme}://{parts.netloc}{parts.path}",
        with_(parts.path.rsplit("/", 1)[0] + "/../../../etc/passwd"),
    ]
    for bad in tampered:
        refused = httpx.get(bad)
        assert refused.status_code in (403, 404), bad
        if refused.status_code == 403:
            assert refused.json() == {
                "error": {
                    "code": "invalid_link",
                    "message": "this media link is incomplete or has been altered",
                    "details": None,
                }
            }
    assert [httpx.get(b).status_code for b in tampered[:6]] == [403] * 6
    clock.advance(seconds=61)
    expired = httpx.get(url)
    assert expired.status_code == 403
    assert expired.json()["error"]["code"] == "link_expired"


def test_served_files_carry_protective_headers(
    customer: Customer, worker: Worker, people: People, live: LiveServer
) -> None:
    _, admin = people.user("admin")
    ours, _ = customer.sends(blob(3000, "h"), "image/png")
    worker.drain()
    served = httpx.get(link_for(live, admin, ours).json()["url"])
    assert served.headers["content-type"] == "image/png"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert (
        served.headers["content-disposition"]
        == "attachment; filename=\"image.png\"; filename*=UTF-8''image.png"
    )
    assert "no-store" in served.headers["cache-control"]


def test_media_of_a_message_held_by_the_rate_limit_is_not_downloaded(
    db: Database, clock: FrozenClock
) -> None:
    from max_server.models import MediaFile, Message

    conversation = factories.conversation(db)
    with db.session() as session:
        message = Message(
            conversation_id=conversation.id,  # type: ignore[arg-type]
            direction="inbound",
            sender_type="customer",
            channel="whatsapp",
            channel_message_id="wamid.held",
            type="image",
            received_at=clock.now(),
            flags=["rate_limited"],
        )
        session.add(message)
        session.flush()
        session.add(MediaFile(message_id=message.id, conversation_id=conversation.id, media_type="image"))  # type: ignore[arg-type]
        session.flush()
        queued = media_service.schedule_downloads(session, message.id, held=True, now=clock.now())  # type: ignore[arg-type]
        session.commit()
        media = session.exec(select(MediaFile).where(MediaFile.message_id == message.id)).one()
    assert queued == []
    assert (media.status, media.reason) == ("failed", "not downloaded: the customer was over the rate limit")


@pytest.mark.parametrize("storage_backend", ["s3"])
def test_s3_links_are_presigned_and_the_local_route_refuses(
    customer: Customer, worker: Worker, people: People, live: LiveServer, moto_url: str
) -> None:
    _, admin = people.user("admin")
    ours, _ = customer.sends(blob(3000, "s"), "image/jpeg")
    worker.drain()
    url = link_for(live, admin, ours).json()["url"]
    assert url.startswith(moto_url + "/")
    assert "X-Amz-Signature=" in url and "X-Amz-Expires=3600" in url
    path = urlsplit(url).path.split("/", 2)[2]
    assert httpx.get(f"{live.url}/media/{path}?exp=1&sig=x").status_code == 404
