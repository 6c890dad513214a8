"""``/metrics``: what operators watch, counted where it happens."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from max_server.channels.whatsapp import payloads as p
from max_server.clock import FrozenClock
from tests.channels.conftest import PHONE_NUMBER_ID, WhatsApp
from tests.support.live import LiveServer


def scrape(
    live: LiveServer, token: str | None = None
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.get(live.url + "/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    found = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(samples: dict, name: str, **labels: str) -> float:  # type: ignore[type-arg]
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_webhooks_jobs_and_lag_are_counted(live: LiveServer, whatsapp: WhatsApp, clock: FrozenClock) -> None:
    before = scrape(live)
    whatsapp.text("hola", ts=clock.now().timestamp())
    sha = p.sha256_b64(b"x")
    whatsapp.message(
        p.image("5215512345678", p.new_wamid(), "m1", "image/jpeg", sha, clock.now().timestamp())
    )
    refused = whatsapp.post_raw(
        p.encode(p.text_webhook(PHONE_NUMBER_ID, "1", "wamid.x", "x")), signature="sha256=00"
    )
    assert refused.status_code == 401
    after = scrape(live)
    assert (
        value(after, "max_webhooks_received_total", channel="whatsapp", outcome="accepted")
        == value(before, "max_webhooks_received_total", channel="whatsapp", outcome="accepted") + 2
    )
    assert value(after, "max_webhooks_received_total", channel="whatsapp", outcome="invalid_signature") >= 1
    assert value(after, "max_ingest_seconds_count", channel="whatsapp") >= 2
    # Jobs waiting (the image's download; no worker runs here) are visible by kind and state.
    assert value(after, "max_jobs", kind="media.download", state="queued") == 1
    assert ("max_events_lag", (("stage", "unsequenced"),)) in after
    assert value(after, "max_http_requests_total", method="POST", status="2xx") >= 1


def test_a_metrics_token_guards_the_endpoint(live: LiveServer, settings: object) -> None:
    from max_server.settings import Settings

    assert isinstance(settings, Settings)
    live.server.config.app.state.settings = settings.model_copy(
        update={"server": settings.server.model_copy(update={"metrics_token": "scrape-me-please"})}
    )
    assert httpx.get(live.url + "/metrics").status_code == 401
    assert httpx.get(live.url + "/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert scrape(live, "scrape-me-please")
