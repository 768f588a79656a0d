"""What the clock says: ``deadlines``, ``check-deadlines`` and the ``metrics`` of response times."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import click

from ._app import App, pass_app
from ._output import deadline_status, duration, plain, summary_metrics_json, table, when, zone
from ._params import SEVERITY_METAVAR, incident_argument, moment, severity

if TYPE_CHECKING:
    from .._metrics import Summary

__all__ = ["COMMANDS"]


@click.command(short_help="List an incident's deadlines.")
@incident_argument
@pass_app
def deadlines(app: App, incident_id: str) -> None:
    """List an incident's deadlines: response, post-mortem, action items, status updates."""
    found = app.reader.deadlines(incident_id)
    now = app.reader.now()
    app.emit(
        [{**plain(d), "status": d.status(now)} for d in found],
        lambda: table(
            ("KIND", "SUBJECT", f"DUE ({zone()})", "STATUS"),
            ((d.kind, d.subject, when(d.due_at), deadline_status(d, now)) for d in found),
            empty="no deadlines",
        ),
    )


@click.command("check-deadlines", short_help="Record every newly missed deadline.")
@click.option(
    "--now", "at", metavar="TIME", callback=moment, help="Check as of this time (default: now)."
)
@pass_app
def check_deadlines(app: App, at: datetime | None) -> None:
    """Record a breach for every deadline newly missed; notify through the routing."""
    from .._events import DeadlineBreached

    events = app.flow.check_deadlines(at, actor=app.actor)
    app.emit(
        [{"incident_id": e.incident_id, **plain(e.data)} for e in events],
        lambda: table(
            ("INCIDENT", "KIND", "SUBJECT", f"DUE ({zone()})"),
            (
                (e.incident_id, breach.kind, breach.subject, when(breach.due_at))
                for e in events
                if isinstance(breach := e.data, DeadlineBreached)
            ),
            empty="no new breaches",
        ),
    )


@click.command(short_help="MTTA, MTTR and each duration's figures.")
@click.option("--by", type=click.Choice(["severity", "type", "period"]), help="Group the figures.")
@click.option(
    "--period",
    type=click.Choice(["day", "week", "month"]),
    default="week",
    show_default=True,
    help="With --by period: the length of each period (UTC).",
)
@click.option(
    "--severity",
    "severities",
    metavar=SEVERITY_METAVAR,
    callback=severity,
    multiple=True,
    help="Only these.",
)
@click.option("--type", "types", metavar="TYPE", multiple=True, help="Only incidents of this type.")
@click.option("--since", metavar="TIME", callback=moment, help="Declared at or after this time.")
@click.option("--until", metavar="TIME", callback=moment, help="Declared before this time.")
@click.option("--prometheus", is_flag=True, help="Print the Prometheus text exposition.")
@pass_app
def metrics(
    app: App,
    by: str | None,
    period: str,
    severities: tuple[str, ...],
    types: tuple[str, ...],
    since: datetime | None,
    until: datetime | None,
    prometheus: bool,
) -> None:
    """Time to triage, contain, fix, resolve and post-mortem; MTTA and MTTR."""
    from ..metrics import METRICS, summarize, to_prometheus

    if prometheus and app.as_json:
        raise click.UsageError("--prometheus prints the text exposition; it cannot be --json")
    if since is not None and until is not None and since >= until:
        raise click.BadParameter("must come before --until", param_hint="--since")

    reader = app.reader
    if hasattr(reader.store, "duration_groups"):
        # A SQL store aggregates its own rows in one query: quicker than any progress bar.
        summaries: Sequence[Summary] = reader.metrics(
            by=by,  # type: ignore[arg-type]
            period=period,  # type: ignore[arg-type]
            severity=severities or None,
            type=types or None,
            declared_after=since,
            declared_before=until,
        )
    else:
        found = reader.milestones(
            severity=severities or None,
            type=types or None,
            declared_after=since,
            declared_before=until,
        )
        summaries = summarize(
            app.progress(found, "measuring"),
            by=by,  # type: ignore[arg-type]
            period=period,  # type: ignore[arg-type]
        )
    if prometheus:
        click.echo(to_prometheus(summaries), nl=False)
        return

    def text() -> str:
        blocks = []
        for summary in summaries:
            group = (
                summary.severity.value if summary.severity else summary.type or summary.period
            ) or "all"
            mtta, mttr = duration(summary.mtta), duration(summary.mttr)
            heading = f"{group}: {summary.count} incident(s), MTTA {mtta}, MTTR {mttr}"
            rows = []
            for name in METRICS:
                stats = getattr(summary, name)
                rows.append(
                    (
                        name.replace("_", " "),
                        str(stats.count),
                        duration(stats.mean),
                        duration(stats.median),
                        duration(stats.p90),
                        duration(stats.maximum),
                    )
                )
            figures = table(("DURATION", "N", "MEAN", "MEDIAN", "P90", "MAX"), rows)
            blocks.append(f"{heading}\n{figures}")
        return "\n\n".join(blocks)

    app.emit([summary_metrics_json(s) for s in summaries], text)


COMMANDS: tuple[click.Command, ...] = (deadlines, check_deadlines, metrics)
