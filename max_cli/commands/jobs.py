"""``max jobs``: the durable job queue (admins)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import typer

from max_cli.output import Cli, command

app = typer.Typer(help="Background jobs: list, inspect, retry dead ones.", no_args_is_help=True)
COLUMNS = [
    ("id", "ID"),
    ("kind", "KIND"),
    ("state", "STATE"),
    ("attempts", "TRIES"),
    ("run_at", "RUN AT"),
    ("last_error", "LAST ERROR"),
]


def show_job(cli: Cli, job: dict[str, Any]) -> None:
    cli.fields(
        [
            (k, job.get(k))
            for k in (
                "id",
                "kind",
                "state",
                "attempts",
                "max_attempts",
                "run_at",
                "created_at",
                "started_at",
                "finished_at",
                "locked_by",
                "dedupe_key",
                "ordering_key",
                "last_error",
                "payload",
            )
        ]
    )


@command(app, "list")
def list_jobs(
    cli: Cli,
    state: Annotated[
        Literal["queued", "running", "done", "dead"] | None, typer.Option(help="Only jobs in this state.")
    ] = None,
    kind: Annotated[str | None, typer.Option(help="Only jobs of this kind, e.g. whatsapp.send.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.", min=1, max=10000)] = 50,
) -> None:
    """List jobs, newest first.

    Example: max jobs list --state dead --json
    """
    items: list[dict[str, Any]] = []
    for job in cli.client().paginate("/api/v1/jobs", "jobs", limit=min(limit, 500), state=state, kind=kind):
        items.append(job)
        if len(items) >= limit:
            break
    cli.emit({"jobs": items, "next_cursor": None}, lambda: cli.table(items, COLUMNS, empty="No jobs."))


@command(app, "show")
def show(cli: Cli, job_id: Annotated[str, typer.Argument(help="Job id.")]) -> None:
    """Show one job with its payload and last error.

    Example: max jobs show 42
    """
    job = cli.client().get(f"/api/v1/jobs/{job_id}")
    cli.emit(job, lambda: show_job(cli, job))


@command(app, "retry")
def retry(cli: Cli, job_id: Annotated[str, typer.Argument(help="Job id (a dead or done job).")]) -> None:
    """Queue a dead job again, with fresh attempts.

    Example: max jobs retry 42
    """
    job = cli.client().post(f"/api/v1/jobs/{job_id}/retry")
    cli.emit(job, lambda: cli.line(f"Job {job['id']} ({job['kind']}) queued again."))
