"""Prometheus metrics at ``/metrics``.

Counters and histograms are updated where things happen; gauges that describe the database
(jobs by kind and state, events waiting to be sequenced or pushed) are read at scrape time, and
``max_metrics_database_up`` says whether that read worked (so an outage is not silence). With
``max server run --workers N`` set ``PROMETHEUS_MULTIPROC_DIR`` so every worker's counters are
summed (the supervisor in :mod:`max_server.serve` drops a dead worker's live gauges); several
hosts are scraped one by one.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import event
from sqlalchemy.orm import Session

log = logging.getLogger("max.metrics")
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
    "max_connected_agents",
    "Live-stream (websocket) connections open on this process.",
    registry=REGISTRY,
    multiprocess_mode="livesum",  # with --workers: the sum over the workers that are alive
)
HTTP_REQUESTS = Counter(
    "max_http_requests", "HTTP requests by method and status class.", ["method", "status"], registry=REGISTRY
)


_AFTER_COMMIT = "max_counts"


def count_after_commit(session: Session, counter: Counter, *labels: str) -> None:
    """Counts one when ``session``'s transaction commits: work that rolls back (and is retried)
    counts nothing, so the figure is what the database holds."""
    session.info.setdefault(_AFTER_COMMIT, []).append((counter, labels))


@event.listens_for(Session, "after_commit")
def _count_committed(session: Session) -> None:
    for counter, labels in session.info.pop(_AFTER_COMMIT, ()):
        counter.labels(*labels).inc()


@event.listens_for(Session, "after_rollback")
def _forget_rolled_back(session: Session) -> None:
    session.info.pop(_AFTER_COMMIT, None)


class DatabaseCollector(Collector):
    """Gauges read from the database when Prometheus scrapes (jobs, events lag), and whether that
    read worked: when it fails, ``max_jobs`` and ``max_events_lag`` are absent and
    ``max_metrics_database_up`` is 0, so alerts on it fire instead of going quiet."""

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
        up = GaugeMetricFamily(
            "max_metrics_database_up",
            "1 when this scrape could read the database; 0 when it could not (then max_jobs and "
            "max_events_lag are missing).",
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
        except Exception as exc:  # any failure to read: report it, never fail the scrape
            log.warning("metrics could not read the database (%s)", type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        lag.add_metric(["unsequenced"], unsequenced)
        lag.add_metric(["unpushed"], max(0, latest - self.app.state.runtime.broadcaster.last_seq))
        up.add_metric([], 1)
        yield jobs
        yield lag
        yield up


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


def forget_process(pid: int | None) -> None:
    """A worker process has exited: its live gauges stop counting (multiprocess mode only)."""
    if pid and os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


def status_class(code: int) -> str:
    return f"{code // 100}xx"
