"""The Graph API client against the sandbox, and the sandbox's webhooks, over real loopback HTTP."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from max_server.channels.whatsapp import payloads as p
from max_server.channels.whatsapp.graph import (
    GraphClient,
    GraphError,
    GraphUnreachable,
    template_body,
    text_body,
)
from max_server.channels.whatsapp.sandbox import Sandbox
from max_server.serve import ThreadedServer

SECRET = "sandbox-test-secret"
TO = "+5215512345678"


class Receiver:
    """A stand-in for MAX's webhook endpoint: records the raw body and headers of every POST."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, str], bytes]] = []
        self.app = Starlette(routes=[Route("/{path:path}", self._receive, methods=["POST"])])

    async def _receive(self, request: Request) -> PlainTextResponse:
        self.calls.append((request.url.path, dict(request.headers), await request.body()))
        return PlainTextResponse("ok")


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(SECRET) as running:
        yield running


@pytest.fixture
def graph(sandbox: Sandbox) -> Iterator[GraphClient]:
    with GraphClient(sandbox.graph_url, sandbox.access_token, timeout=5) as client:
        yield client


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    recv = Receiver()
    with ThreadedServer(recv.app) as server:
        yield recv, server.url


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# Sending ---------------------------------------------------------------------------------------
def test_a_text_send_reaches_the_sandbox_as_meta_would_receive_it(
    sandbox: Sandbox, graph: GraphClient
) -> None:
    body = text_body(TO, "Hola, ¿cómo está?", reply_to_wamid="wamid.ABC")
    result = graph.send_message(sandbox.phone_number_id, body)

    assert result.wamid.startswith("wamid.")
    assert result.wa_id == "5215512345678"
    assert result.raw["messages"] == [{"id": result.wamid}]
    [request] = sandbox.requests
    assert (request.method, request.path) == ("POST", f"/v23.0/{sandbox.phone_number_id}/messages")
    assert request.headers["authorization"] == "Bearer sandbox-token"
    assert request.json == body
    assert body["context"] == {"message_id": "wamid.ABC"}
    assert body["text"] == {"preview_url": False, "body": "Hola, ¿cómo está?"}
    assert sandbox.sent_messages(accepted_only=True) == [body]
    assert sandbox.accepted() == [(result.wamid, body)]


def test_a_wrong_token_is_refused_with_metas_401(sandbox: Sandbox) -> None:
    with GraphClient(sandbox.graph_url, "wrong-token-123456") as client, pytest.raises(GraphError) as caught:
        client.send_message(sandbox.phone_number_id, text_body(TO, "hi"))
    assert (caught.value.status, caught.value.code) == (401, 190)
    assert not caught.value.retryable
    assert caught.value.fbtrace_id
    assert "wrong-token-123456" not in str(caught.value)
    assert sandbox.sent_messages(accepted_only=True) == []


def test_server_errors_are_retryable_until_the_send_succeeds(sandbox: Sandbox, graph: GraphClient) -> None:
    sandbox.fail_next(2)
    for _ in range(2):
        with pytest.raises(GraphError) as caught:
            graph.send_message(sandbox.phone_number_id, text_body(TO, "retry me"))
        assert (caught.value.status, caught.value.code) == (500, 131000)
        assert caught.value.retryable and not caught.value.window_closed
    assert graph.send_message(sandbox.phone_number_id, text_body(TO, "retry me")).wamid
    assert len(sandbox.sent_messages()) == 3
    assert len(sandbox.sent_messages(accepted_only=True)) == 1


def test_a_closed_window_is_reported_and_not_retryable(sandbox: Sandbox, graph: GraphClient) -> None:
    sandbox.refuse_next(131047)
    with pytest.raises(GraphError) as caught:
        graph.send_message(sandbox.phone_number_id, text_body(TO, "late"))
    error = caught.value
    assert (error.status, error.code, error.window_closed, error.retryable) == (400, 131047, True, False)
    assert "Re-engagement message" in error.message
    assert error.details is not None and "24 hours" in error.details


def test_meta_rejects_malformed_sends(sandbox: Sandbox, graph: GraphClient) -> None:
    for bad in ({"to": TO, "type": "text", "text": {"body": "x"}}, {**text_body(TO, "x"), "text": {}}):
        with pytest.raises(GraphError) as caught:
            graph.send_message(sandbox.phone_number_id, bad)
        assert (caught.value.status, caught.value.code, caught.value.retryable) == (400, 100, False)
    with pytest.raises(GraphError) as unknown:
        graph.send_message("999", text_body(TO, "x"))
    assert (unknown.value.code, unknown.value.subcode) == (100, 33)


def test_template_bodies_carry_positional_named_and_header_parameters() -> None:
    body = template_body(TO, "order_update", "es_MX", ["566701", "hoy"], header_parameters=["Ana"])
    assert body["type"] == "template"
    assert body["template"] == {
        "name": "order_update",
        "language": {"code": "es_MX"},
        "components": [
            {"type": "header", "parameters": [{"type": "text", "text": "Ana"}]},
            {
                "type": "body",
                "parameters": [{"type": "text", "text": "566701"}, {"type": "text", "text": "hoy"}],
            },
        ],
    }
    named = template_body(TO, "welcome", "en", {"name": "Ana"})
    assert named["template"]["components"] == [
        {"type": "body", "parameters": [{"type": "text", "parameter_name": "name", "text": "Ana"}]}
    ]


def test_the_answer_waits_for_the_before_send_hook(
    sandbox: Sandbox, graph: GraphClient, receiver: tuple[Receiver, str]
) -> None:
    recv, url = receiver
    hooked: list[str] = []

    def deliver_first(wamid: str) -> None:
        hooked.append(wamid)
        assert sandbox.status_update(url, wamid, "delivered", "5215512345678").status_code == 200

    sandbox.before_send_answer(deliver_first)
    result = graph.send_message(sandbox.phone_number_id, text_body(TO, "fast status"))
    assert hooked == [result.wamid]
    [(_, _, raw)] = recv.calls
    [status] = json.loads(raw)["entry"][0]["changes"][0]["value"]["statuses"]
    assert (status["id"], status["status"]) == (result.wamid, "delivered")


# Network failures ------------------------------------------------------------------------------
def test_an_unreachable_graph_api_certainly_did_not_get_the_request() -> None:
    client = GraphClient(f"http://127.0.0.1:{closed_port()}/v23.0", "token-abcdef", timeout=2)
    with client, pytest.raises(GraphUnreachable) as caught:
        client.send_message("1", text_body(TO, "x"))
    assert caught.value.ambiguous is False
    assert "token-abcdef" not in str(caught.value)
    assert caught.value.__cause__ is None  # httpx's exception holds the request and its token


def test_a_timeout_after_sending_is_ambiguous(sandbox: Sandbox) -> None:
    sandbox.delay_next(3)
    client = GraphClient(sandbox.graph_url, sandbox.access_token, timeout=0.3)
    with client, pytest.raises(GraphUnreachable) as caught:
        client.send_message(sandbox.phone_number_id, text_body(TO, "slow"))
    assert caught.value.ambiguous is True
    assert len(sandbox.sent_messages()) == 1  # Meta got it; whether it was sent is unknown


# Media -----------------------------------------------------------------------------------------
def test_media_downloads_with_the_bearer_and_matches_its_sha256(sandbox: Sandbox, graph: GraphClient) -> None:
    data = os.urandom(200_000)
    media_id = sandbox.add_media(data, "image/jpeg")

    info = graph.get_media(media_id)
    assert (info.id, info.mime_type, info.file_size) == (media_id, "image/jpeg", len(data))
    assert info.sha256 == base64.b64encode(hashlib.sha256(data).digest()).decode()
    with graph.stream_media(info.url) as response:
        assert response.headers["content-type"] == "image/jpeg"
        got = b"".join(response.iter_bytes())
    assert got == data
    download = sandbox.requests[-1]
    assert download.headers["authorization"] == "Bearer sandbox-token"


def test_expired_unknown_and_failing_media_urls(sandbox: Sandbox, graph: GraphClient) -> None:
    media_id = sandbox.add_media(b"%PDF-1.7 hello", "application/pdf")
    info = graph.get_media(media_id)
    sandbox.expire_media_urls()
    with pytest.raises(GraphError) as expired, graph.stream_media(info.url):
        pass
    assert expired.value.status == 404 and not expired.value.retryable
    with (
        pytest.raises(GraphError) as unknown,
        graph.stream_media(f"{sandbox.url}/whatsapp_business/attachments/?mid=1&hash=x"),
    ):
        pass
    assert unknown.value.status == 404

    sandbox.media_failures(media_id, 1, status=503)
    fresh = graph.get_media(media_id)
    with pytest.raises(GraphError) as failing, graph.stream_media(fresh.url):
        pass
    assert (failing.value.status, failing.value.code, failing.value.retryable) == (503, None, True)
    assert "Sandbox download failure" in failing.value.message  # a non-JSON body, trimmed
    with graph.stream_media(fresh.url) as response:
        assert response.read() == b"%PDF-1.7 hello"

    with pytest.raises(GraphError) as missing:
        graph.get_media("404404")
    assert (missing.value.status, missing.value.code) == (400, 100)


# Templates -------------------------------------------------------------------------------------
def template(name: str, language: str) -> dict[str, Any]:
    components = [{"type": "BODY", "text": "Pedido {{1}}", "example": {"body_text": [["566701"]]}}]
    return {"name": name, "language": language, "category": "UTILITY", "components": components}


def test_templates_round_trip(sandbox: Sandbox, graph: GraphClient) -> None:
    waba = sandbox.waba_id
    es = graph.create_template(waba, template("order_update", "es"))
    en = graph.create_template(waba, template("order_update", "en"))
    graph.create_template(waba, template("welcome", "es"))
    assert es["status"] == "PENDING" and es["category"] == "UTILITY" and es["id"] != en["id"]
    with pytest.raises(GraphError) as duplicate:
        graph.create_template(waba, template("order_update", "es"))
    assert duplicate.value.subcode == 2388024

    listed = graph.list_templates(waba, limit=1)  # three pages, followed by cursor
    assert sorted((t["name"], t["language"]) for t in listed) == [
        ("order_update", "en"),
        ("order_update", "es"),
        ("welcome", "es"),
    ]
    assert [t["id"] for t in graph.list_templates(waba, name="welcome")] != []

    assert graph.delete_template(waba, "order_update", hsm_id=es["id"]) == {"success": True}
    assert [(t["name"], t["language"]) for t in graph.list_templates(waba, name="order_update")] == [
        ("order_update", "en")
    ]
    graph.create_template(waba, template("order_update", "es"))
    graph.delete_template(waba, "order_update")
    assert [t["name"] for t in graph.list_templates(waba)] == ["welcome"]
    with pytest.raises(GraphError):
        graph.delete_template(waba, "order_update")


# Payloads and webhooks -------------------------------------------------------------------------
def test_payloads_are_meta_shaped_escaped_and_signed() -> None:
    wamid = p.new_wamid()
    payload = p.text_webhook("1122", "5215512345678", wamid, "¡Hola, señor! 😮", name="José", ts=1700000000)
    raw = p.encode(payload)
    assert raw.isascii() and b"\\u00a1Hola, se\\u00f1or! \\ud83d\\ude2e" in raw and b"Jos\\u00e9" in raw
    expected = hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    assert p.sign(raw, SECRET) == "sha256=" + expected
    assert json.loads(raw) == payload

    value = payload["entry"][0]["changes"][0]["value"]
    assert payload["object"] == "whatsapp_business_account"
    assert value["metadata"]["phone_number_id"] == "1122"
    assert value["contacts"] == [{"profile": {"name": "José"}, "wa_id": "5215512345678"}]
    assert value["messages"] == [
        {
            "from": "5215512345678",
            "id": wamid,
            "timestamp": "1700000000",
            "type": "text",
            "text": {"body": "¡Hola, señor! 😮"},
        }
    ]


def test_message_builders_follow_metas_shapes() -> None:
    voice = p.audio("52", "wamid.1", "77", "audio/ogg; codecs=opus", "abc=", 1, voice=True)
    assert voice["audio"] == {
        "mime_type": "audio/ogg; codecs=opus",
        "sha256": "abc=",
        "id": "77",
        "voice": True,
    }
    doc = p.document("52", "wamid.2", "78", "application/pdf", "x=", 1, caption="c", filename="f.pdf")
    assert doc["document"]["filename"] == "f.pdf" and "voice" not in doc["document"]
    assert p.sticker("52", "wamid.3", "79", "image/webp", "y=", 1)["sticker"]["animated"] is False
    assert p.reaction("52", "wamid.4", "wamid.0", None, 1)["reaction"] == {"message_id": "wamid.0"}
    assert p.reaction("52", "wamid.4", "wamid.0", "", 1)["reaction"] == {"message_id": "wamid.0", "emoji": ""}
    reply = p.text("52", "wamid.5", "yes", 1, context=p.context("wamid.0", "15550783881"))
    assert reply["context"] == {"from": "15550783881", "id": "wamid.0"}
    assert p.context(forwarded=True) == {"forwarded": True}
    assert p.context(frequently_forwarded=True) == {"frequently_forwarded": True}
    moved = p.system_number_change("52111", "52222", "wamid.6", 1)
    assert moved["from"] == "52111" and moved["system"]["wa_id"] == "52222"
    assert moved["system"]["type"] == "user_changed_number"
    assert "contacts" not in p.messages_change("1", [moved], [])["value"]
    assert p.unsupported("52", "wamid.7", 1)["errors"][0]["code"] == 131051
    assert p.unknown_type("52", "wamid.8", "poll", {"q": "?"}, 1)["poll"] == {"q": "?"}
    assert p.button("52", "wamid.9", "STOP", "Stop", 1)["button"] == {"payload": "STOP", "text": "Stop"}
    listed = p.interactive_list_reply("52", "wamid.10", "row1", "Uno", ts=1)["interactive"]
    assert listed == {"type": "list_reply", "list_reply": {"id": "row1", "title": "Uno"}}
    hidden = p.from_user(p.text("52", "wamid.11", "hi", 1), "US.123", hide_number=True)
    assert "from" not in hidden and hidden["from_user_id"] == "US.123"

    failed = p.status("wamid.1", "failed", "52", 1, [p.error(131047, "Re-engagement message")])
    assert failed["errors"][0]["error_data"] == {"details": "Re-engagement message"}
    assert (
        "pricing" not in failed and p.status("wamid.1", "read", "52", 1)["pricing"]["pricing_model"] == "PMP"
    )
    change = p.template_status_change("APPROVED", 1689556908129832, "order", "en_US", category="UTILITY")
    assert change["field"] == "message_template_status_update"
    assert change["value"]["message_template_id"] == 1689556908129832
    assert (
        p.template_quality_change(1, "t", "en", "GREEN", "YELLOW")["value"]["new_quality_score"] == "YELLOW"
    )
    assert (
        p.template_category_change(1, "t", "en", "MARKETING", "UTILITY")["field"]
        == "template_category_update"
    )


def test_post_webhook_sends_exactly_the_signed_bytes(
    sandbox: Sandbox, receiver: tuple[Receiver, str]
) -> None:
    recv, url = receiver
    payload = p.text_webhook(sandbox.phone_number_id, "5215512345678", p.new_wamid(), "Ñandú")
    assert sandbox.post_webhook(url, payload).status_code == 200
    response, wamid = sandbox.customer_text(url, "5215512345678", "¿Hay envío?", name="Lucía")
    assert response.status_code == 200

    (path, headers, raw), (_, headers2, raw2) = recv.calls
    assert path == "/webhooks/whatsapp"
    assert raw == p.encode(payload)
    for h, body in ((headers, raw), (headers2, raw2)):
        assert (
            h["x-hub-signature-256"]
            == "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        )
        assert h["x-hub-signature"].startswith("sha1=") and h["content-type"] == "application/json"
    sent = json.loads(raw2)
    assert sent["entry"][0]["id"] == sandbox.waba_id
    message = sent["entry"][0]["changes"][0]["value"]["messages"][0]
    assert (message["id"], message["text"]["body"]) == (wamid, "¿Hay envío?")


def test_customer_media_is_downloadable_from_the_sandbox(
    sandbox: Sandbox, graph: GraphClient, receiver: tuple[Receiver, str]
) -> None:
    recv, url = receiver
    data = b"OggS" + os.urandom(1000)
    _, _, media_id = sandbox.customer_media(url, "5215512345678", data, "audio/ogg; codecs=opus", voice=True)
    audio = json.loads(recv.calls[0][2])["entry"][0]["changes"][0]["value"]["messages"][0]["audio"]
    assert audio["id"] == media_id and audio["voice"] is True
    info = graph.get_media(media_id)
    assert info.sha256 == audio["sha256"]
    with graph.stream_media(info.url) as response:
        assert response.read() == data


def test_the_control_api_simulates_customers_and_lists_requests(
    sandbox: Sandbox, graph: GraphClient, receiver: tuple[Receiver, str]
) -> None:
    recv, url = receiver
    graph.send_message(sandbox.phone_number_id, text_body(TO, "hola"))
    made = httpx.post(
        f"{sandbox.url}/_sandbox/customer-message",
        json={"to_url": url, "from": "5215599999999", "text": "Hola"},
    )
    assert made.status_code == 200 and made.json()["status"] == 200
    assert json.loads(recv.calls[0][2])["entry"][0]["changes"][0]["value"]["messages"][0]["text"] == {
        "body": "Hola"
    }
    assert httpx.post(f"{sandbox.url}/_sandbox/customer-message", json={"text": "x"}).status_code == 400

    listed = httpx.get(f"{sandbox.url}/_sandbox/requests").json()
    assert [(r["method"], r["path"]) for r in listed] == [
        ("POST", f"/v23.0/{sandbox.phone_number_id}/messages")
    ]
    assert listed[0]["headers"]["authorization"] == "Bearer [redacted]"
    assert listed[0]["json"]["text"]["body"] == "hola"


def test_threaded_server_picks_a_port_and_stops_cleanly() -> None:
    recv = Receiver()
    server = ThreadedServer(recv.app)
    assert server.url == f"http://127.0.0.1:{server.port}" and server.port > 0
    with server:
        assert server.running
        assert httpx.post(server.url + "/x", content=b"1").text == "ok"
    assert not server.running
    server.stop()  # twice is fine
    with pytest.raises(httpx.ConnectError):
        httpx.post(server.url + "/x", content=b"1")


def test_max_sandbox_run_serves_until_sigterm_without_loading_server_code_at_import() -> None:
    code = (
        "import sys, max_cli.commands.sandbox\n"
        "print(','.join(m for m in ('fastapi', 'starlette', 'uvicorn') if m in sys.modules))"
    )
    imported = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert imported.stdout.strip() == ""

    runner = (
        "import typer\nfrom max_cli.commands import sandbox\n"
        "root = typer.Typer()\nroot.add_typer(sandbox.app, name='sandbox')\n"
        "root(['sandbox', 'run', '--port', '0', '--app-secret', 's3cret', '--json'])\n"
    )
    command = [sys.executable, "-c", runner]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            info = json.loads(proc.stdout.readline())
            assert info["whatsapp"]["graph_url"] == info["url"] + "/v23.0"
            assert info["whatsapp"]["app_secret"] == "s3cret"
            assert httpx.get(info["control"]["requests"]).json() == []
            assert set(info["control"]) == {
                "customer_message",
                "status",
                "template_status",
                "sent",
                "requests",
            }
            with GraphClient(info["whatsapp"]["graph_url"], info["whatsapp"]["access_token"]) as client:
                sent = client.send_message(info["whatsapp"]["phone_number_id"], text_body(TO, "hola"))
            assert sent.wamid
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=15)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, err
    assert "POST /v23.0/" not in err  # --json keeps diagnostics off stderr


def test_a_stopped_sandbox_ends_pending_delays_quickly(sandbox: Sandbox) -> None:
    sandbox.delay_next(30)
    client = GraphClient(sandbox.graph_url, sandbox.access_token, timeout=0.2)
    with client, pytest.raises(GraphUnreachable):
        client.send_message(sandbox.phone_number_id, text_body(TO, "slow"))
    started = time.monotonic()
    sandbox.stop()
    assert time.monotonic() - started < 5
