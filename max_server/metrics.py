"""Prometheus metrics at ``/metrics``.

Counters and histograms are updated where things happen; gauges that describe the database
(jobs by kind and state, events waiting to be sequenced or pushed) are read at scrape time. With
``uvicorn --workers`` set ``PROMETHEUS_MULTIPROC_DIR`` so every worker's counters are summed;
several hosts are scraped one by one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

REGISTRY = CollectorRegistry(auto_describe=True)

WEBHOOKS_RECEIVED = Counter(
    "max_webhooks_received",
    "Inbound channel webhooks by channel and outcome (stored, refused, …).",
    ["channel", "outcome"],
    registry=REGISTRY,
)
INGEST_SECONDS = Histogram(
    "max_ingest_seconds",
    "Time from a webhook's arrival to its acknowledgement (verify, store, commit).",
    ["channel"],
    buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    registry=REGISTRY,
)
JOBS_RUN = Counter(
    "max_jobs_run", "Jobs run by this process, by kind and outcome.", ["kind", "outcome"], registry=REGISTRY
)
DELIVERIES = Counter(
    "max_webhook_deliveries",
    "Outbound webhook delivery attempts by outcome (success, retry, failed, gone).",
    ["outcome"],
    registry=REGISTRY,
)
SLA_WARNINGS = Counter(
    "max_sla_warnings", "SLA warnings (80 % of a deadline) raised.", ["metric"], registry=REGISTRY
)
SLA_VIOLATIONS = Counter("max_sla_violations", "SLA breaches recorded.", ["metric"], registry=REGISTRY)
CONNECTED_AGENTS = Gauge(
    "max_connected_agents", "Live-stream (websocket) connections open on this process.", registry=REGISTRY
)
HTTP_REQUESTS = Counter(
    "max_http_requests", "HTTP requests by method and status class.", ["method", "status"], registry=REGISTRY
)


class DatabaseCollector(Collector):
    """Gauges read from the database when Prometheus scrapes (jobs, events lag)."""

    def __init__(self) -> None:
        self.app: Any = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        if self.app is None:
            return
        from sqlalchemy import func
        from sqlmodel import col, select

        from max_server.models import Event, Job
        from max_server.services import events

        db = self.app.state.db
        jobs = GaugeMetricFamily(
            "max_jobs", "Jobs in the database by kind and state.", labels=["kind", "state"]
        )
        lag = GaugeMetricFamily(
            "max_events_lag",
            "Events committed but not yet sequenced, and sequenced but not yet pushed by this process.",
            labels=["stage"],
        )
        try:
            with db.session(write=False) as session:
                for kind, state, count in session.exec(
                    select(Job.kind, Job.state, func.count())
                    .where(col(Job.state).in_(("queued", "running", "dead")))
                    .group_by(col(Job.kind), col(Job.state))
                ):
                    jobs.add_metric([kind, state], count)
                unsequenced = session.exec(
                    select(func.count()).select_from(Event).where(col(Event.seq).is_(None))
                ).one()
                latest = events.latest_seq(session)
        except Exception:
            return
        lag.add_metric(["unsequenced"], unsequenced)
        lag.add_metric(["unpushed"], max(0, latest - self.app.state.runtime.broadcaster.last_seq))
        yield jobs
        yield lag


DATABASE = DatabaseCollector()
REGISTRY.register(DATABASE)


def render() -> bytes:
    """The exposition text; sums all worker processes in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged)
        merged.register(DATABASE)
        return generate_latest(merged)
    return generate_latest(REGISTRY)


def status_class(code: int) -> str:
    return f"{code // 100}xx"
